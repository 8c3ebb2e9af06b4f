"""The S3 store under faults, against real SeaweedFS: the server stopped
mid-sweep and started again (the sweep completes, nothing is lost, the user
is told what the farm waits for), and uploads cut half-way by a proxy that
drops the connection (no readable object is ever left under a content hash
that its bytes do not have)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from farm.errors import ArtifactMissingError, UserError
from farm.store.base import hash_file
from farm.store.s3 import S3Store
from tests.integration import farmdb
from tests.integration.conftest import TINY_MEASURE, s3_env_for, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def _status_text(sweep: str) -> str:
    return subprocess.run([sys.executable, "-m", "farm", "sweep", "status", sweep], capture_output=True, text=True,
                          env=dict(os.environ), timeout=120).stdout


def test_s3_server_stopped_mid_sweep(redis_server, pg_url, own_s3_server, tiny_model, farm_factory):
    env = {"FARM_DB_URL": pg_url, "FARM_BROKER_URL": redis_server.url, **s3_env_for(own_s3_server)}
    farm = farm_factory(env)
    farm.start_worker("a")
    wait_for(lambda: len(farmdb.live_devices()) == 1, 90, what="a live worker")
    sweep = farm.submit(farm.write_spec(tiny_model, 8, measure={**TINY_MEASURE, "duration_ms": 300}))
    wait_for(lambda: farmdb.statuses(sweep)["done"] >= 2, 90, interval=0.2, what="two jobs done")
    own_s3_server.stop()
    status = _status_text(sweep)
    assert f"waiting: the artifact store is unavailable (cannot reach the S3 endpoint {own_s3_server.endpoint}" \
        in status, status
    wait_for(lambda: "waiting for the artifact store" in farm.log("a"), 60, what="the worker to wait")
    stuck = farmdb.statuses(sweep)
    time.sleep(2)
    assert farmdb.statuses(sweep)["done"] == stuck["done"]  # nothing finishes without its artifact
    own_s3_server.start()
    wait_for(lambda: farmdb.finished(sweep), 180, interval=0.5, what="the sweep to finish")
    jobs = farmdb.jobs(sweep)
    assert [j.status for j in jobs] == ["done"] * 8, farmdb.failures(sweep)
    assert set(farmdb.measurements_per_job(sweep).values()) == {1}
    store = S3Store.from_url(env["FARM_STORE_URL"])
    for job in jobs:  # nothing lost: every artifact a row points at reads back whole
        assert store.get_bytes(job.artifact_sha256)
    assert "waiting: the artifact store" not in _status_text(sweep)


class CuttingProxy:
    """A TCP proxy in front of the S3 server that drops the first ``cuts``
    connections carrying a PUT after ``after`` bytes of it, mid-body."""

    def __init__(self, upstream_port: int, cuts: int, after: int):
        self.upstream, self.cuts, self.after = upstream_port, cuts, after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cut_count = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, watch: bool) -> None:
        sent_in_put = None
        try:
            while chunk := source.recv(65536):
                if watch and sent_in_put is None and b"PUT /" in chunk:
                    sent_in_put = 0
                if sent_in_put is not None:
                    if self.cut_count < self.cuts and sent_in_put + len(chunk) > self.after:
                        self.cut_count += 1
                        sink.sendall(chunk[: max(0, self.after - sent_in_put)])
                        raise ConnectionAbortedError("cut")
                    sent_in_put += len(chunk)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def engine_file(tmp_path):
    path = tmp_path / "engine.bin"
    path.write_bytes(os.urandom(3 << 20))
    return path


def _store_through(proxy: CuttingProxy, s3_env: dict, monkeypatch) -> S3Store:
    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FARM_S3_ENDPOINT_URL", f"http://127.0.0.1:{proxy.port}")
    return S3Store.from_url(s3_env["FARM_STORE_URL"])


def _direct(s3_env: dict, monkeypatch) -> S3Store:
    monkeypatch.setenv("FARM_S3_ENDPOINT_URL", s3_env["FARM_S3_ENDPOINT_URL"])
    return S3Store.from_url(s3_env["FARM_STORE_URL"])


def test_upload_cut_once_is_retried_whole(s3_server, s3_env, engine_file, monkeypatch, tmp_path):
    proxy = CuttingProxy(int(s3_env["FARM_S3_ENDPOINT_URL"].rsplit(":", 1)[1]), cuts=1, after=1 << 20)
    try:
        key = _store_through(proxy, s3_env, monkeypatch).put_file(engine_file)
    finally:
        proxy.close()
    assert proxy.cut_count == 1 and key == hash_file(engine_file)
    copy = _direct(s3_env, monkeypatch).get_file(key, tmp_path / "copy.bin")
    assert copy.read_bytes() == engine_file.read_bytes()


def test_upload_cut_every_time_leaves_nothing_under_the_hash(s3_server, s3_env, engine_file, monkeypatch,
                                                              tmp_path):
    proxy = CuttingProxy(int(s3_env["FARM_S3_ENDPOINT_URL"].rsplit(":", 1)[1]), cuts=100, after=1 << 20)
    try:
        with pytest.raises(UserError, match="cannot reach the S3 endpoint"):
            _store_through(proxy, s3_env, monkeypatch).put_file(engine_file)
    finally:
        proxy.close()
    assert proxy.cut_count >= 1
    direct, key = _direct(s3_env, monkeypatch), hash_file(engine_file)
    assert not direct.exists(key)
    with pytest.raises(ArtifactMissingError):
        direct.get_file(key, tmp_path / "out")


def test_half_object_under_the_hash_is_replaced_before_use(s3_server, s3_env, engine_file, monkeypatch, tmp_path):
    """A half-written object already under the key (a writer without
    checksums that was cut off) is never taken for the artifact."""
    direct, key = _direct(s3_env, monkeypatch), hash_file(engine_file)
    half = engine_file.read_bytes()[: 1 << 20]
    direct.client.put_object(Bucket=direct.bucket, Key=direct._key(key), Body=half)
    assert direct.put_file(engine_file) == key
    assert direct.get_file(key, tmp_path / "copy.bin").read_bytes() == engine_file.read_bytes()


def test_patient_fetch_waits_for_the_server_and_impatient_one_fails_at_once(own_s3_server, monkeypatch, caplog):
    env = s3_env_for(own_s3_server)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FARM_STORE_WAIT_S", "120")
    key = S3Store.from_url(env["FARM_STORE_URL"]).put_bytes(b"engine bytes" * 1000)
    own_s3_server.stop()
    with pytest.raises(UserError, match=f"cannot reach the S3 endpoint {own_s3_server.endpoint}"):
        S3Store.from_url(env["FARM_STORE_URL"]).get_bytes(key)  # the CLI's store: no waiting
    restarter = threading.Timer(3, own_s3_server.start)
    restarter.start()
    try:
        with caplog.at_level("WARNING", logger="farm.store"):
            assert S3Store.from_url(env["FARM_STORE_URL"], patient=True).get_bytes(key) == b"engine bytes" * 1000
    finally:
        restarter.join()
    assert "waiting for the artifact store" in caplog.text and "is back after" in caplog.text
