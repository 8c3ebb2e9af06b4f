"""`farm worker start` stops like a container's main process: SIGTERM lets
the running job finish (exit 0), a second signal stops at once and the job
runs again elsewhere, exactly once; as PID 1 too; nothing is left running."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.integration import farmdb
from tests.integration.conftest import TINY_MEASURE, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
CLI = ("-m", "farm", "worker", "start")
SLOW_JOB = {**TINY_MEASURE, "duration_ms": 3000}


def _can_unshare() -> bool:
    return bool(shutil.which("unshare")) and subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True).returncode == 0


def _session(sid: int) -> list[str]:
    """Every live process of session ``sid`` (the launcher's tree)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(f"{entry} {stat.split('(', 1)[1].split(')')[0]}")
    return found


def _env(redis_server, pg_url, tmp_path) -> dict[str, str]:
    return {"FARM_DB_URL": pg_url, "FARM_BROKER_URL": redis_server.url,
            "FARM_STORE_URL": str(tmp_path / "shared-artifacts"), "FARM_SHUTDOWN_GRACE_S": "60"}


def _launcher_pid(process: subprocess.Popen, wrapped: bool) -> int:
    """The launcher itself: under unshare, the one child of unshare (PID 1 inside)."""
    if not wrapped:
        return process.pid
    children = wait_for(lambda: open(f"/proc/{process.pid}/task/{process.pid}/children").read().split(), 30,
                        what="unshare's child")
    return int(children[0])


@pytest.mark.parametrize("as_pid1", [False, True], ids=["plain", "pid1"])
def test_sigterm_lets_the_running_job_finish(as_pid1, redis_server, pg_url, tiny_model, farm_factory, tmp_path):
    if as_pid1 and not _can_unshare():
        pytest.skip("unshare --pid --fork is not permitted here")
    farm = farm_factory(_env(redis_server, pg_url, tmp_path))
    wrap = ("unshare", "--pid", "--fork", "--mount-proc") if as_pid1 else ()
    process = farm.start_worker("a", command=CLI, wrap=wrap)
    wait_for(lambda: len(farmdb.live_devices()) == 1, 90, what="a live worker")
    sweep = farm.submit(farm.write_spec(tiny_model, 2, measure=SLOW_JOB))
    job, _ = wait_for(lambda: farmdb.running_on("a"), 60, interval=0.05, what="a running job")
    os.kill(_launcher_pid(process, as_pid1), signal.SIGTERM)
    assert process.wait(timeout=60) == 0, farm.log("a")
    statuses = {j.id: j.status for j in farmdb.jobs(sweep)}
    assert statuses[job] == "done", farm.log("a")
    assert sorted(statuses.values()) == ["done", "queued"]  # the next job waits for another worker
    assert farmdb.measurements_per_job(sweep) == {job: 1}
    assert _session(process.pid) == []
    assert "warm shutdown" in farm.log("a")


def test_second_signal_is_a_cold_shutdown_and_the_job_runs_elsewhere(redis_server, pg_url, tiny_model,
                                                                      farm_factory, tmp_path):
    # A slow heartbeat under CI load must not make b's run look orphaned.
    farm = farm_factory({**_env(redis_server, pg_url, tmp_path), "FARM_STALE_S": "8"})
    # Both workers live before the job exists, and the one that takes it is stopped: starting the
    # second one only after the job began let an 8 s job end first on a loaded machine.
    launchers = {name: farm.start_worker(name, command=CLI) for name in ("a", "b")}
    wait_for(lambda: len(farmdb.live_devices()) == 2, 90, what="two live workers")
    sweep = farm.submit(farm.write_spec(tiny_model, 1, measure={**SLOW_JOB, "duration_ms": 8000}))
    taker, (job, worker) = wait_for(lambda: next(((i, t) for i in ("a", "b") if (t := farmdb.running_on(i))), None),
                                    60, interval=0.05, what="a running job")
    other = "b" if taker == "a" else "a"
    first = launchers[taker]
    os.kill(first.pid, signal.SIGTERM)
    time.sleep(0.5)
    started = time.monotonic()
    os.kill(first.pid, signal.SIGINT)
    assert first.wait(timeout=20) == 1
    assert time.monotonic() - started < 10  # cold: it did not wait for the 8 s measurement
    assert _session(first.pid) == []
    assert "cold shutdown (a second signal)" in farm.log(taker)
    assert "was stopped by a cold shutdown of its launcher: requeued" in farm.log(taker)
    wait_for(lambda: farmdb.finished(sweep), 90, interval=0.3, what="the job to run again")
    [done] = farmdb.jobs(sweep)
    assert done.status == "done" and done.attempts == 2 and f"-{other}-" in done.worker, farmdb.failures(sweep)
    assert farmdb.measurements_per_job(sweep) == {job: 1}  # ended exactly once


def test_grace_period_end_is_a_cold_shutdown(redis_server, pg_url, tiny_model, farm_factory, tmp_path):
    farm = farm_factory({**_env(redis_server, pg_url, tmp_path), "FARM_SHUTDOWN_GRACE_S": "1"})
    process = farm.start_worker("a", command=CLI)
    wait_for(lambda: len(farmdb.live_devices()) == 1, 90, what="a live worker")
    sweep = farm.submit(farm.write_spec(tiny_model, 1, measure={**SLOW_JOB, "duration_ms": 8000}))
    job, _ = wait_for(lambda: farmdb.running_on("a"), 60, interval=0.05, what="a running job")
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=20) == 1
    assert "cold shutdown (the 1 s grace period ended)" in farm.log("a")
    assert _session(process.pid) == []
    [handed_back] = farmdb.jobs(sweep)
    assert handed_back.status == "queued" and handed_back.attempts == 1  # another worker will run it


def test_processes_a_job_left_behind_end_with_the_launcher(redis_server, pg_url, tiny_model, farm_factory,
                                                           tmp_path):
    """As PID 1 the kernel ends a namespace's processes with it anyway; here
    the launcher, as a subreaper, must end them itself."""
    leaks = tmp_path / "leaked-pids"
    plugin = {"FARM_EXTRA_BACKENDS": "leaky=tests.integration.plugins.leaky:LeakyConfig",
              "FARM_TEST_LEAK_FILE": str(leaks)}
    farm = farm_factory({**_env(redis_server, pg_url, tmp_path), **plugin})
    process = farm.start_worker("a", command=CLI)
    wait_for(lambda: len(farmdb.live_devices()) == 1, 90, what="a live worker")
    sweep = farm.submit(farm.write_spec(tiny_model, 1, backends=["leaky"]))
    wait_for(lambda: farmdb.finished(sweep), 60, interval=0.2, what="the leaky job")
    assert farmdb.statuses(sweep) == {"unsupported": 1}
    orphan = int(leaks.read_text().split()[1])  # double-forked: the launcher's child now, not init's
    assert int(open(f"/proc/{orphan}/stat").read().rsplit(")", 1)[1].split()[1]) == process.pid
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=60) == 0, farm.log("a")
    assert _session(process.pid) == []
