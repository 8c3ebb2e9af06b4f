"""A ``built`` job (a TensorRT-RTX engine stored, waiting for a worker of
its GPU class) reports the build time and artifact size its build
recorded (issue 24, finding 4: both were null)."""

from __future__ import annotations

import json
from datetime import datetime

from click.testing import CliRunner

from farm.cli.commands import cli
from farm.db import Artifact, Job, session_scope
from farm.store import open_store
from seeding import SWEEP


def _built_job(with_size: bool) -> None:
    key = open_store().put_bytes(f"engine {with_size:d}".encode().ljust(290, b"."))
    build = {"artifact_sha256": key, "build_s": 12.5, "info": {}, "media_type": "application/x-engine"}
    if with_size:
        build["artifact_size"] = 290
    with session_scope() as session:
        session.add(Artifact(sha256=key, size_bytes=290, kind="engine"))
        session.add(Job(id=f"j-built-{with_size}", sweep_id=SWEEP, seq=100 + with_size, key=f"key-built-{with_size}",
                        backend="tensorrt-rtx", backend_version="1.7", precision="fp16", batch_size=1,
                        profile="default", device_class="gpu.nvidia-geforce-rtx-4090", config={}, status="built",
                        attempts=0, artifact_sha256=key, build=build, queued_at=datetime(2026, 1, 2, 2)))


def test_a_built_job_reports_its_build_time_and_artifact_size(known):
    _built_job(with_size=True)
    _built_job(with_size=False)  # a build recorded before artifact_size was: the stored artifact's size
    result = CliRunner().invoke(cli, ["report", SWEEP, "--format", "json"], catch_exceptions=False)
    rows = {r["job_id"]: r for r in json.loads(result.stdout)}
    for job_id in ("j-built-True", "j-built-False"):
        assert rows[job_id]["status"] == "built"
        assert rows[job_id]["build_s"] == 12.5 and rows[job_id]["artifact_size"] == 290, rows[job_id]
    assert rows["j-fp16-b1"]["build_s"] == 40.0 and rows["j-fp16-b1"]["artifact_size"] == 1001  # measured rows
    assert rows["j-failed"]["build_s"] is None and rows["j-failed"]["artifact_size"] is None
