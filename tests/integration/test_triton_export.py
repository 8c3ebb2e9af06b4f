"""``farm export --triton`` for a sweep with two device classes.

A real ONNX Runtime sweep of PP-OCR's text-direction classifier (batch 1
and 2, served with a 300 us queue delay and 2 instances: the scenarios'
axes, Offline only to keep it short) runs on this CPU. A second device
class is added by writing its rows as the farm writes them (the same job
and measurement columns, the class renamed; its figures make batch 2 win
there). The repository's configs parse against Triton's model_config
protobuf, and max batch, dims, profile, batching and instance count match
the winners that ``farm best`` and ``farm report --format json`` give.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid

import pytest

from farm.triton import parse
from tests.real_models import by_key

SPEC = """\
name: export-cls
model: cls.onnx
backends: [onnxruntime]
batch_sizes: [1, 2]
profiles:
  - name: p
    inputs:
      x: {min: [1, 3, 48, 192], opt: [1, 3, 48, 192], max: [2, 3, 48, 192]}
measure: {warmup_ms: 10, duration_ms: 100, iterations: 10, max_remeasure: 0}
scenarios:
  run: [offline]
  min_duration_ms: 100
  min_query_count: 16
  queue_delay_us: [300]
  instances: [2]
"""
OTHER = "cpu.x86_64.other-host"


def farm(args, env, cwd, ok=True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "farm", *args], env=env, cwd=cwd, capture_output=True,
                            text=True, timeout=600)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def _second_class(db) -> None:
    """Copy every job and measurement to OTHER, batch 2 a hundred times faster than batch 1 there."""
    with sqlite3.connect(db) as connection:
        connection.row_factory = sqlite3.Row
        jobs = [dict(r) for r in connection.execute("SELECT * FROM jobs")]
        for job in jobs:
            old = job["id"]
            job.update(id=uuid.uuid4().hex[:12], device_class=OTHER, seq=job["seq"] + 100,
                       key=uuid.uuid4().hex)
            _insert(connection, "jobs", job)
            for m in [dict(r) for r in connection.execute("SELECT * FROM measurements WHERE job_id = ?", (old,))]:
                factor = 0.1 if job["batch_size"] == 2 else 10.0
                samples = [s * factor for s in json.loads(m["samples_ms"])]
                m.pop("id")
                m.update(job_id=job["id"], samples_ms=json.dumps(samples), p50_ms=m["p50_ms"] * factor,
                         p99_ms=m["p99_ms"] * factor, mean_ms=m["mean_ms"] * factor)
                _insert(connection, "measurements", m)


def _insert(connection, table: str, row: dict) -> None:
    columns = ", ".join(row)
    connection.execute(f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))


@pytest.mark.slow
def test_triton_repository_of_two_device_classes(tmp_path):
    shutil.copy(by_key("ppocr-cls").locate(), tmp_path / "cls.onnx")
    (tmp_path / "spec.yaml").write_text(SPEC)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env["FARM_HOME"] = str(tmp_path / "home")
    farm(["run", "spec.yaml"], env, tmp_path)
    sweep_id = json.loads(farm(["sweep", "list", "--format", "json"], env, tmp_path).stdout)[0]["sweep_id"]
    _second_class(tmp_path / "home" / "farm.db")

    report = {r["job_id"]: r for r in json.loads(farm(["report", sweep_id, "--format", "json"], env,
                                                      tmp_path).stdout)}
    best = json.loads(farm(["best", "--sweep", sweep_id, "--format", "json"], env, tmp_path).stdout)
    winners = {r["device_class"]: report[r["job_id"]] for r in best if r["role"] == "winner"}
    assert len(winners) == 2 and winners[OTHER]["batch_size"] == 2

    out = farm(["export", "--sweep", sweep_id, "--triton", "repo"], env, tmp_path)  # named after cls.onnx's stem
    assert out.stdout.strip().endswith("wrote 1 Triton model(s) under repo")
    model = tmp_path / "repo" / "cls"
    for device_class, row in winners.items():
        config = parse((model / "configs" / f"{device_class}.pbtxt").read_text())
        assert config.platform == "onnxruntime_onnx" and config.name == "cls"
        assert config.max_batch_size == row["batch_size"]
        assert [list(i.dims) for i in config.input] == [[3, 48, 192]]  # the profile's shape after the batch
        assert config.input[0].name == "x"
        assert [list(o.dims) for o in config.output] == [[2]]  # declared [-1, 2], batch dropped
        assert list(config.dynamic_batching.preferred_batch_size) == [row["batch_size"]]
        assert config.dynamic_batching.max_queue_delay_microseconds == row["queue_delay_us"] == 300
        assert config.instance_group[0].count == row["instances"] == 2
        assert config.instance_group[0].kind == 2  # KIND_CPU
        artifact = model / "1" / config.default_model_filename
        assert artifact.stat().st_size == row["artifact_size"]
    shared = parse((model / "config.pbtxt").read_text())
    assert shared.max_batch_size == min(r["batch_size"] for r in winners.values())

    again = farm(["export", "--sweep", sweep_id, "--triton", "repo", "--name", "cls"], env, tmp_path, ok=False)
    assert again.returncode == 1 and again.stderr.startswith("Error: repo/cls exists and is not empty")
