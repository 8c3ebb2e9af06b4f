"""Workers dying at random points, the broker losing every message, and a
job that kills its worker every time: the sweep always finishes, with
exactly one result per job and nothing left running."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from tests.integration import farmdb
from tests.integration.conftest import TINY_MEASURE, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def _shared(redis_server, pg_url, tmp_path, **extra) -> dict[str, str]:
    return {"FARM_DB_URL": pg_url, "FARM_BROKER_URL": redis_server.url,
            "FARM_STORE_URL": str(tmp_path / "shared-artifacts"), **extra}


def _assert_one_result_each(sweep: str, total: int) -> list:
    jobs = farmdb.jobs(sweep)
    assert [j.status for j in jobs] == ["done"] * total, farmdb.failures(sweep)
    per_job = farmdb.measurements_per_job(sweep)
    assert len(per_job) == total and set(per_job.values()) == {1}, per_job
    return jobs


def test_sigkill_at_random_points(redis_server, pg_url, tiny_model, farm_factory, tmp_path):
    """≥10 kills: single worker processes (the launcher restarts them) and,
    once, a launcher's whole process tree (the other launcher's reconciler
    recovers its job when the heartbeat goes stale)."""
    farm = farm_factory(_shared(redis_server, pg_url, tmp_path, FARM_MAX_ATTEMPTS="50"))
    for instance in ("a", "b"):
        farm.start_worker(instance)
    wait_for(lambda: len(farmdb.live_devices()) == 2, 90, what="two live workers")
    sweep = farm.submit(farm.write_spec(tiny_model, 60, measure={**TINY_MEASURE, "duration_ms": 250}))
    rng, killed = random.Random(), []
    while len(killed) < 11:
        # A random one of the instances busy now: waiting for one named in advance could outlast the
        # sweep on a loaded machine (the other drains it while this one restarts).
        busy = wait_for(lambda: {i: t for i in ("a", "b") if (t := farmdb.running_on(i))}, 90, interval=0.02,
                        what="a busy worker")
        instance = rng.choice(sorted(busy))
        target = busy[instance]
        time.sleep(rng.uniform(0, 0.25))  # anywhere in the build, load, accuracy or timing
        if len(killed) == 5:
            farm.kill_tree(instance)  # launcher and worker at once: nobody is left to hand the job back
            farm.start_worker(instance)  # waits out the dead worker's heartbeat, then takes the device
        else:
            os.kill(farmdb.pid_of(target[1]), signal.SIGKILL)
        killed.append(target)
        # The dead worker's row names its job until the job is handed back.
        wait_for(lambda: not farmdb.running_under(target[1]), 30, what="the killed job to be handed back")
    wait_for(lambda: farmdb.finished(sweep), 150, interval=0.5, what="the sweep to finish")
    jobs = _assert_one_result_each(sweep, 60)
    assert not any(j.status == "running" for j in jobs)
    # Each kill that landed mid-job cost that job one more attempt (a kill
    # landing between two jobs costs nothing), and nothing else did: a live
    # worker whose heartbeat came late on a loaded machine keeps its job.
    extra = sum(j.attempts - 1 for j in jobs)
    assert extra <= len(killed), (killed, {j.id: j.attempts for j in jobs})
    assert extra >= 1  # the kills did land mid-job (the test tests something)


def test_redis_restart_mid_sweep(redis_server, pg_url, tiny_model, farm_factory, tmp_path):
    farm = farm_factory(_shared(redis_server, pg_url, tmp_path))
    farm.start_worker("a")
    wait_for(lambda: len(farmdb.live_devices()) == 1, 90, what="a live worker")
    sweep = farm.submit(farm.write_spec(tiny_model, 16, measure={**TINY_MEASURE, "duration_ms": 150}))
    wait_for(lambda: farmdb.statuses(sweep)["done"] >= 3, 60, what="three jobs done")
    redis_server.restart()  # no persistence: every queued message is gone
    wait_for(lambda: farmdb.finished(sweep), 120, interval=0.5, what="the sweep to finish")
    _assert_one_result_each(sweep, 16)
    assert "re-sent ['" in farm.log("a")  # the reconciler, not luck, brought the lost jobs back


def test_job_that_kills_its_worker_is_quarantined(redis_server, pg_url, tiny_model, farm_factory, tmp_path):
    plugin = {"FARM_EXTRA_BACKENDS": "crashy=tests.integration.plugins.crashy:CrashyConfig"}
    farm = farm_factory(_shared(redis_server, pg_url, tmp_path, **plugin))
    farm.start_worker("a")
    spec = farm.write_spec(tiny_model, 2, backends=["crashy", "onnxruntime"])
    sweep = farm.submit(spec)
    wait_for(lambda: farmdb.finished(sweep), 120, interval=0.5, what="the sweep to finish")
    jobs = {(j.backend, j.batch_size): j for j in farmdb.jobs(sweep)}
    for batch in (1, 2):
        crashed = jobs[("crashy", batch)]
        assert crashed.status == "failed" and crashed.attempts == 3
        assert "quarantined after 3 attempts" in crashed.error and "exited with code 3" in crashed.error
        assert jobs[("onnxruntime", batch)].status == "done"
    assert set(farmdb.measurements_per_job(sweep).values()) == {1}
