"""Issue 24 finding 2: a live worker keeps its job however late its
heartbeat comes, and a dead one loses it at once.

On a loaded machine a worker's heartbeat came later than FARM_STALE_S; the
reconciler declared the live worker dead and started its job again while
the first run went on (13 extra attempts for 11 kills). A worker on the
reconciler's own host is now looked at directly (farm.liveness)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from farm.db import Device, session_scope, utcnow
from farm.reconcile import find_orphans, recover
from tests.integration import farmdb
from tests.integration.conftest import TINY_MEASURE, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def _set_heartbeat(uuid: str, when) -> None:
    with session_scope() as session:
        session.execute(update(Device).where(Device.uuid == uuid).values(last_heartbeat=when))


def test_live_worker_keeps_its_job_when_its_heartbeat_is_late_and_a_dead_one_loses_it_at_once(
        redis_server, pg_url, tiny_model, farm_factory, tmp_path):
    farm = farm_factory({"FARM_DB_URL": pg_url, "FARM_BROKER_URL": redis_server.url,
                         "FARM_STORE_URL": str(tmp_path / "artifacts"),
                         # no pass of the launcher's own: this test asks the reconciler itself
                         "FARM_RECONCILE_S": "3600", "FARM_STALE_S": "600"})
    farm.start_worker("a")
    wait_for(lambda: len(farmdb.live_devices()) == 1, 90, what="a live worker")
    sweep = farm.submit(farm.write_spec(tiny_model, 1, measure={**TINY_MEASURE, "duration_ms": 60000,
                                                                "iterations": 100000}))
    job_id, worker = wait_for(lambda: farmdb.running_on("a"), 60, interval=0.05, what="the job to run")
    device = farmdb.device_of("a")
    # A heartbeat an hour late (a starved thread, a slow database): the
    # worker's process is there, so the job stays with it.
    for _ in range(5):
        _set_heartbeat(device.uuid, utcnow() - timedelta(hours=2))
        assert find_orphans() == []
    assert farmdb.running_on("a") == (job_id, worker)
    # The whole tree killed (nobody left to hand the job back) with a fresh
    # heartbeat on its row: the job is an orphan once the processes are gone,
    # not after FARM_STALE_S (600 s here).
    farm.kill_tree("a")
    _set_heartbeat(device.uuid, utcnow())
    [orphan] = wait_for(find_orphans, 60, interval=0.2, what="the dead worker's job to be an orphan")
    assert (orphan.job_id, orphan.worker) == (job_id, worker) and "is gone" in orphan.why, orphan
    assert recover(orphan) == "requeued"
    assert farmdb.statuses(sweep) == {"queued": 1}
