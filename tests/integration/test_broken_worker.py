"""Issue 24 finding 7: a worker whose own environment is broken stops
taking jobs and hands them back, with one line naming the cause.

A worker with a full disk or refused store credentials failed every job it
took (14 of 16 in one round, 0.1-0.9 s each), and a full disk was reported
as a corrupt model (INVALID_PROTOBUF). Now the job goes back to `queued`
(its attempt not counted), the worker exits EX_BROKEN and its launcher does
not restart it; a healthy worker then runs every job."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.integration import farmdb
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def small_disk(tmp_path):
    """A real 40 MiB file system (tmpfs), which the test can fill."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): " + mounted.stderr.decode(errors="replace").strip())
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass
    finally:
        os.close(fd)
    for n in range(1000):  # the last blocks, in small files
        try:
            (disk / f"crumb{n}").write_bytes(b"\0" * 512)
        except OSError:
            break
    return filler


def _error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("Error: ")]


def _assert_handed_back(sweep: str, jobs: int) -> None:
    rows = farmdb.jobs(sweep)
    assert len(rows) == jobs
    assert all(job.status == "queued" and job.attempts == 0 for job in rows), [(j.status, j.attempts, j.error)
                                                                             for j in rows]


def test_full_disk_mid_run_hands_the_job_back_and_stops_the_worker(redis_server, pg_url, tiny_model,
                                                                    farm_factory, tmp_path, small_disk):
    farm = farm_factory({"FARM_DB_URL": pg_url, "FARM_BROKER_URL": redis_server.url,
                         "FARM_STORE_URL": str(tmp_path / "artifacts")})
    launcher = farm.start_worker("a", extra={"FARM_HOME": str(small_disk / "home"),
                                             "TMPDIR": str(small_disk)})
    wait_for(lambda: len(farmdb.live_devices()) == 1, 90, what="a live worker")
    filler = fill(small_disk)
    sweep = farm.submit(farm.write_spec(tiny_model, 4))
    assert launcher.wait(timeout=120) == 1  # no worker left to take jobs: no restart loop
    _assert_handed_back(sweep, 4)
    [line] = _error_lines(farm.log("a"))
    assert "stops taking jobs" in line and "no space left on the device" in line, line
    assert "INVALID_PROTOBUF" not in farm.log("a")
    # Room again, a worker again: every job runs once.
    filler.unlink()
    farm.start_worker("b")
    wait_for(lambda: farmdb.finished(sweep), 120, interval=0.5, what="the sweep to finish")
    assert farmdb.statuses(sweep) == {"done": 4}
    assert set(farmdb.measurements_per_job(sweep).values()) == {1}


def test_full_disk_is_never_a_corrupt_model(small_disk):
    """ONNX Runtime reading a model cut short by a full disk says
    INVALID_PROTOBUF; the worker's classification names the disk."""
    from workers.faults import fault_of

    fill(small_disk)
    error = RuntimeError("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from m.onnx failed:Protobuf "
                         "parsing failed.")
    assert fault_of(error, [small_disk]).startswith(f"no space left on the device of {small_disk}")
    assert fault_of(error, [Path(os.getcwd())]) is None  # on a disk with room it is the model's problem


def test_refused_store_credentials_stop_the_worker_before_it_takes_a_job(redis_server, pg_url, tiny_model,
                                                                         farm_factory, s3_env):
    farm = farm_factory({"FARM_DB_URL": pg_url, "FARM_BROKER_URL": redis_server.url, **s3_env})
    sweep = farm.submit(farm.write_spec(tiny_model, 3))
    launcher = farm.start_worker("a", extra={"AWS_SECRET_ACCESS_KEY": "not-the-key"})
    assert launcher.wait(timeout=120) == 1
    [line] = _error_lines(farm.log("a"))
    assert "cannot take jobs" in line and "refused the credentials" in line, line
    assert "not-the-key" not in farm.log("a")
    _assert_handed_back(sweep, 3)
    farm.start_worker("b")
    wait_for(lambda: farmdb.finished(sweep), 120, interval=0.5, what="the sweep to finish")
    assert farmdb.statuses(sweep) == {"done": 3}
