"""Issue 24 finding 8: nothing is left `pending` that no worker will take,
and status tells the truth. `farm sweep submit` killed just after its
commit left 2,000 jobs `pending` for good while `farm sweep status` said
`queued`, until a manual `farm sweep resume`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.integration import farmdb
from tests.integration.conftest import wait_for

PROFILE = {"name": "p", "inputs": {"images": {"min": [1, 3, 16, 16], "opt": [1, 3, 16, 16], "max": [4, 3, 16, 16]}}}


def _committed_not_sent(model, batches: int = 2, name: str = "stranded") -> str:
    """What a submit killed between its commit and its messages leaves."""
    from farm.service import submit
    from farm.spec import parse_spec

    spec = parse_spec({"name": name, "model": str(model), "backends": ["onnxruntime"], "precisions": ["fp32"],
                       "batch_sizes": list(range(1, batches + 1)), "profiles": [PROFILE], "devices": "cpu",
                       "measure": {"warmup_ms": 0, "duration_ms": 10, "iterations": 3, "max_remeasure": 0}})
    return submit(spec, enqueue=False).sweep_id


def test_status_says_jobs_were_never_sent_and_a_reconcile_pass_sends_them(farm_home, tiny_cnn, monkeypatch):
    from farm.reconcile import reconcile
    from farm.service import sweep_status

    sweep = _committed_not_sent(tiny_cnn)
    status = sweep_status(sweep)
    assert (status["state"], status["not_sent"]) == ("pending", 2)
    env = {**os.environ, "FARM_HOME": str(farm_home)}
    shown = subprocess.run([sys.executable, "-m", "farm", "sweep", "status", sweep], env=env, capture_output=True,
                           text=True, timeout=120)
    assert (f"waiting: 2 jobs were never sent to the broker (their submit stopped before it sent them); a worker "
            f"launcher sends them within FARM_STALE_S, or run 'farm sweep resume {sweep}'") in shown.stdout
    assert not reconcile(sweep).unsent  # younger than FARM_STALE_S: its submit may still be sending them
    report = reconcile(sweep, grace_s=0)
    assert sorted(report.unsent) == sorted(job.id for job in farmdb.jobs(sweep))
    assert sweep_status(sweep)["state"] == "queued" and sweep_status(sweep)["not_sent"] == 0
    assert not reconcile(sweep, grace_s=0).unsent  # sent once


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_jobs_a_killed_submit_never_sent_run_without_a_resume(redis_server, pg_url, tiny_cnn, farm_factory,
                                                              tmp_path):
    farm = farm_factory({"FARM_DB_URL": pg_url, "FARM_BROKER_URL": redis_server.url,
                         "FARM_STORE_URL": str(tmp_path / "artifacts")})
    sweep = _committed_not_sent(tiny_cnn, 3)
    farm.start_worker("a")  # its launcher's reconcile pass finds them (FARM_STALE_S is 2 s here)
    wait_for(lambda: farmdb.finished(sweep), 120, interval=0.5, what="the never-sent jobs to run")
    assert farmdb.statuses(sweep) == {"done": 3}
    assert set(farmdb.measurements_per_job(sweep).values()) == {1}
