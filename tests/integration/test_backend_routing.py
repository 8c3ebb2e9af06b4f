"""Jobs wait for a worker that has their backend: a worker without the
backend's package never takes (and fails) them, `farm sweep status` says
what is missing, and a worker with the package drains them."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.integration import farmdb
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres]
PLUGIN = {"FARM_EXTRA_BACKENDS": "needs-extra=tests.integration.plugins.needs_extra:NeedsExtraConfig"}


def test_job_waits_for_a_worker_with_its_backend(redis_server, pg_url, tiny_model, farm_factory, tmp_path):
    farm = farm_factory({"FARM_DB_URL": pg_url, "FARM_BROKER_URL": redis_server.url,
                         "FARM_STORE_URL": str(tmp_path / "store"), **PLUGIN})
    farm.start_worker("plain")  # has onnxruntime, lacks farm_extra_pkg
    wait_for(lambda: len(farmdb.live_devices()) == 1, 90, what="a live worker")
    sweep = farm.submit(farm.write_spec(tiny_model, 2, backends=["onnxruntime", "needs-extra"]))
    wait_for(lambda: farmdb.statuses(sweep).get("done") == 2, 60, what="the onnxruntime jobs")
    assert farmdb.statuses(sweep) == {"done": 2, "queued": 2}
    status = subprocess.run(["farm", "sweep", "status", sweep], capture_output=True, text=True,
                            env=dict(os.environ), timeout=60)
    assert status.returncode == 0, status.stderr
    assert "waiting: no live worker serves" in status.stdout and "with backend needs-extra" in status.stdout

    package = tmp_path / "site" / "farm_extra_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    pythonpath = f"{farm.env['PYTHONPATH']}{os.pathsep}{tmp_path / 'site'}"
    farm.start_worker("extra", extra={"PYTHONPATH": pythonpath})
    wait_for(lambda: farmdb.finished(sweep), 90, what="the needs-extra jobs")
    jobs = farmdb.jobs(sweep)
    assert [j.status for j in jobs] == ["done"] * 4
    assert {j.worker.split("-")[2] for j in jobs if j.backend == "needs-extra"} == {"extra"}
