"""`farm run` end to end on the embedded defaults: a real Celery worker
process, real ONNX Runtime builds, the SQLite database and local store."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

SPEC = """\
name: tiny-sweep
model: models/det.onnx
backends: [onnxruntime]
precisions: [fp32, int8, fp16]
batch_sizes: [1, 4]
profiles:
  - name: p32
    inputs:
      images: {min: [1, 3, 32, 32], opt: [4, 3, 48, 48], max: [4, 3, 64, 64]}
devices: any
measure: {warmup_ms: 10, duration_ms: 50, iterations: 5, max_remeasure: 0}
accuracy: {reference: onnxruntime}
data: samples.npz
"""


def farm(args, env, cwd, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "farm", *args], env=env, cwd=cwd, capture_output=True,
                            text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def count(home, table: str) -> int:
    with sqlite3.connect(home / "farm.db") as connection:
        return connection.execute(f"select count(*) from {table}").fetchone()[0]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_cnn):
    cwd = tmp_path_factory.mktemp("local-run")
    (cwd / "models").mkdir()
    shutil.copy(tiny_cnn, cwd / "models" / "det.onnx")
    (cwd / "spec.yaml").write_text(SPEC)
    samples = np.random.default_rng(3).uniform(0, 1, (6, 3, 48, 48)).astype(np.float32)
    np.savez(cwd / "samples.npz", images=samples)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env["FARM_HOME"] = str(cwd / "home")
    first = farm(["run", "spec.yaml"], env, cwd)
    return cwd, env, cwd / "home", first


def test_run_prints_one_row_per_job(sweep):
    _, _, _, first = sweep
    lines = first.stdout.strip().splitlines()
    assert lines[0].split()[:7] == ["job", "status", "backend", "prec", "batch", "profile", "device"]
    # the summary sentences ("On <device>, ... wins") follow the table on stdout
    rows = [line.split() for line in lines[2:] if line.strip() and not line.startswith("On ")]
    assert len(rows) == 6
    assert [(r[1], r[3], r[4]) for r in rows] == [
        ("done", "fp32", "1"), ("done", "fp32", "4"), ("done", "int8", "1"), ("done", "int8", "4"),
        ("unsupported", "fp16", "1"), ("unsupported", "fp16", "4")]
    assert "jobs finished" in first.stderr


def test_report_json_has_the_documented_fields(sweep):
    cwd, env, _, _ = sweep
    sweep_id = json.loads(farm(["sweep", "list", "--format", "json"], env, cwd).stdout)[0]["sweep_id"]
    rows = json.loads(farm(["report", sweep_id, "--format", "json"], env, cwd).stdout)
    required = {"job_id", "status", "backend", "precision", "batch_size", "profile", "device", "latency_p50_ms",
                "latency_p99_ms", "throughput", "build_s", "artifact_sha256", "rel_l2_error"}
    assert all(required <= set(row) for row in rows)
    done = [r for r in rows if r["status"] == "done"]
    assert len(done) == 4
    for row in done:
        assert row["latency_p50_ms"] > 0 and row["latency_p99_ms"] >= row["latency_p50_ms"]
        assert row["throughput"] == pytest.approx(row["batch_size"] * 1000 / row["latency_mean_ms"])
        assert row["samples"] >= 5 and len(row["artifact_sha256"]) == 64
    assert next(r for r in rows if r["precision"] == "fp32")["rel_l2_error"] < 1e-4
    assert next(r for r in rows if r["precision"] == "int8")["rel_l2_error"] > 0
    fp16 = [r for r in rows if r["precision"] == "fp16"]
    assert fp16[0]["error"] == "onnxruntime cannot build fp16; it supports fp32, int8, model"


def test_best_and_fetch_agree_with_the_report(sweep, tmp_path):
    cwd, env, home, _ = sweep
    sweep_id = json.loads(farm(["sweep", "list", "--format", "json"], env, cwd).stdout)[0]["sweep_id"]
    rows = json.loads(farm(["report", sweep_id, "--format", "json"], env, cwd).stdout)
    eligible = [r for r in rows if r["status"] == "done" and r["accuracy_pass"] is not False]
    fastest = min(eligible, key=lambda r: r["latency_p50_ms"])
    best = json.loads(farm(["best", "--sweep", sweep_id, "--format", "json"], env, cwd).stdout)
    winner = next(r for r in best if r["role"] == "winner")
    # The fastest configuration wins unless another one is statistically
    # tied with it and wins the documented tie-break.
    assert winner["job_id"] == fastest["job_id"] or fastest["job_id"] in winner["tied_with"]
    fastest = next(r for r in rows if r["job_id"] == winner["job_id"])
    target = tmp_path / "best.onnx"
    out = farm(["fetch", "models/det.onnx", "-o", str(target)], env, cwd)
    assert f"sha256 {fastest['artifact_sha256']}" in out.stderr + out.stdout
    assert hashlib.sha256(target.read_bytes()).hexdigest() == fastest["artifact_sha256"]
    by_throughput = json.loads(farm(["best", "models/det.onnx", "--objective", "throughput", "--format", "json"],
                                    env, cwd).stdout)
    top = max(eligible, key=lambda r: r["throughput"])
    winner = next(r for r in by_throughput if r["role"] == "winner")
    assert winner["job_id"] == top["job_id"] or top["job_id"] in winner["tied_with"]


def test_second_identical_sweep_builds_nothing(sweep):
    cwd, env, home, _ = sweep
    measurements, artifacts = count(home, "measurements"), count(home, "artifacts")
    again = farm(["run", "spec.yaml"], env, cwd)
    assert "6 jobs, 4 reused, 2 unsupported, 0 to run" in again.stderr
    assert count(home, "measurements") == measurements and count(home, "artifacts") == artifacts
    assert again.stdout.count("reused") == 4
    forced = farm(["run", "spec.yaml", "--force"], env, cwd)
    assert "0 reused" in forced.stderr and count(home, "measurements") == measurements + 4


def test_user_data_drives_calibration_and_accuracy(sweep):
    _, _, home, _ = sweep
    with sqlite3.connect(home / "farm.db") as connection:
        rows = connection.execute("select j.precision, m.build_info from measurements m join jobs j "
                                  "on j.id = m.job_id").fetchall()
    int8 = [json.loads(info) for precision, info in rows if precision == "int8"]
    assert int8 and all(info["quantization"]["data"] == "user" for info in int8)
