"""Reuse follows the library the *worker* runs: after the workers of a
device class upgrade ONNX Runtime, a resubmitted sweep runs again (and says
why), and only results made with the new version are reused afterwards.

The upgraded worker is a real worker process whose Python path holds an
``onnxruntime 1.99.0`` distribution record ahead of the installed one: what
``pip install -U`` would leave in a site directory, as far as version
discovery (importlib.metadata) can tell."""

from __future__ import annotations

import os
from importlib import metadata

import pytest

from tests.integration import farmdb
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def _submit(spec_path):
    from farm.service import submit
    from farm.spec import load_spec

    return submit(load_spec(spec_path))


def _upgraded_site(root, version: str):
    site = root / f"site-{version}"
    record = site / f"onnxruntime-{version}.dist-info"
    record.mkdir(parents=True)
    (record / "METADATA").write_text(f"Metadata-Version: 2.1\nName: onnxruntime\nVersion: {version}\n")
    return site


def _environment(job_id: str) -> dict:
    from sqlalchemy import select

    from farm.db import Measurement, session_scope

    with session_scope() as session:
        env = session.scalar(select(Measurement.environment).where(Measurement.job_id == job_id))
    return env["backend_environment"]


def test_results_are_reused_only_in_the_environment_that_made_them(redis_server, pg_url, tiny_model, farm_factory,
                                                                  tmp_path):
    installed = metadata.version("onnxruntime")
    farm = farm_factory({"FARM_DB_URL": pg_url, "FARM_BROKER_URL": redis_server.url,
                         "FARM_STORE_URL": str(tmp_path / "store")})
    spec = farm.write_spec(tiny_model, 2)
    farm.start_worker("old")
    wait_for(lambda: len(farmdb.live_devices()) == 1, 90, what="the old worker")
    first = _submit(spec)
    wait_for(lambda: farmdb.finished(first.sweep_id), 90, what="the first sweep")
    assert farmdb.statuses(first.sweep_id) == {"done": 2}
    assert {_environment(j.id)["onnxruntime"] for j in farmdb.jobs(first.sweep_id)} == {installed}

    farm.stop_all()  # the class's workers are upgraded: the old one leaves, a new one registers
    upgraded = _upgraded_site(tmp_path, "1.99.0")
    farm.start_worker("new", extra={"PYTHONPATH": f"{upgraded}{os.pathsep}{farm.env['PYTHONPATH']}"})
    wait_for(lambda: [d.versions["libraries"]["onnxruntime"] for d in farmdb.live_devices()] == ["1.99.0"], 90,
             what="the upgraded worker")
    from click.testing import CliRunner

    from farm.cli.commands import cli

    listed = CliRunner().invoke(cli, ["devices"], catch_exceptions=False).output
    assert "onnxruntime 1.99.0" in listed and f"onnxruntime {installed}" in listed  # both registered rows
    second = _submit(spec)
    assert (second.reused, second.queued) == (0, 2)
    (why,) = second.not_reused
    assert second.not_reused[why] == 2
    assert "now runs onnxruntime 1.99.0" in why and f"made with onnxruntime {installed}" in why
    wait_for(lambda: farmdb.finished(second.sweep_id), 90, what="the re-run")
    jobs = farmdb.jobs(second.sweep_id)
    assert [j.status for j in jobs] == ["done", "done"] and all(j.result_job_id is None for j in jobs)
    assert {j.worker.split("-")[2] for j in jobs} == {"new"}
    assert {_environment(j.id)["onnxruntime"] for j in jobs} == {"1.99.0"}

    third = _submit(spec)  # same environment as the re-run: reused, pointing at the re-run's results
    assert (third.reused, third.queued, third.not_reused) == (2, 0, {})
    assert {j.result_job_id for j in farmdb.jobs(third.sweep_id)} == {j.id for j in jobs}
