"""Issue 3 acceptance: three CPU workers "on three hosts" (separate
FARM_HOMEs, distinct FARM_WORKER_INSTANCE) share PostgreSQL, Redis and S3,
drain a 30-job sweep while one of them is SIGKILLed mid-job."""

from __future__ import annotations

import os
import signal

import pytest

from tests.integration import farmdb
from tests.integration.conftest import TINY_MEASURE, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def test_three_workers_drain_a_sweep_while_one_is_killed(redis_server, pg_url, s3_env, tiny_model,
                                                          farm_factory):
    farm = farm_factory({"FARM_DB_URL": pg_url, "FARM_BROKER_URL": redis_server.url, **s3_env})
    for instance in ("a", "b", "c"):
        farm.start_worker(instance)
    wait_for(lambda: len(farmdb.live_devices()) == 3, 90, what="three live workers")
    spec = farm.write_spec(tiny_model, 30, measure={**TINY_MEASURE, "duration_ms": 300})
    sweep = farm.submit(spec)

    victim_job, victim = wait_for(lambda: farmdb.running_on("b"), 60, interval=0.02, what="b running a job")
    os.kill(farmdb.pid_of(victim), signal.SIGKILL)

    wait_for(lambda: farmdb.finished(sweep), 120, interval=0.5, what="the sweep to finish")
    jobs = farmdb.jobs(sweep)
    assert [j.status for j in jobs] == ["done"] * 30, farmdb.failures(sweep)
    per_job = farmdb.measurements_per_job(sweep)
    assert len(per_job) == 30 and set(per_job.values()) == {1}, per_job
    rerun = next(j for j in jobs if j.id == victim_job)
    assert rerun.worker != victim and rerun.attempts == 2, (rerun.worker, rerun.attempts)
    workers = {j.worker.split("-")[2] for j in jobs}  # farm-cpu-<instance>-<pid>@host
    assert {"a", "c"} <= workers, workers  # the sweep was shared, not drained by one worker
    # b's launcher restarted its killed worker. On a loaded machine it may come back only after a and c
    # took the last jobs (seen in CI under two busy loops), so "b did a job too" is no invariant; being
    # live again is.
    wait_for(lambda: any(d.uuid.endswith("-b") and d.worker != victim for d in farmdb.live_devices()), 90,
             what="b's restarted worker live")
    from farm.store import open_store

    store = open_store()
    assert all(store.exists(j.artifact_sha256) for j in jobs)  # engines landed in S3
