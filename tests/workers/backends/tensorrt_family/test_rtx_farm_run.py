"""TensorRT-RTX through the whole farm on a CPU-only machine, as CI runs it:
``farm run`` builds real engines from real pretrained models on the CPU
worker, stores engines, metadata and precision models, and ends each job
``unsupported`` because measurement needs a supported GPU."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest
import yaml

from farm.store import open_store

pytestmark = pytest.mark.slow  # TensorRT-RTX engine builds on the CPU (a minute each)

PROFILES = {
    "det": [{"name": "square", "inputs": {"x": {"min": [1, 3, 32, 32], "opt": [1, 3, 64, 64], "max": [1, 3, 96, 96]}}},
            {"name": "wide", "inputs": {"x": {"min": [1, 3, 32, 64], "opt": [1, 3, 32, 128], "max": [1, 3, 64, 160]}}}],
    "rec": [{"name": "short", "inputs": {"x": {"min": [1, 3, 48, 32], "opt": [1, 3, 48, 64], "max": [1, 3, 48, 96]}}},
            {"name": "long", "inputs": {"x": {"min": [1, 3, 48, 96], "opt": [1, 3, 48, 160], "max": [1, 3, 48, 192]}}}],
}


def farm(args, env, cwd, timeout=400) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "farm", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def write_spec(tmp_path, model, profiles) -> str:
    spec = {"name": model.stem, "model": str(model), "backends": ["tensorrt-rtx"],
            "precisions": ["fp32", "fp16", "int8"], "batch_sizes": [1], "profiles": profiles, "devices": "cpu",
            "calibration": {"samples": 2}, "measure": {"warmup_ms": 0, "duration_ms": 20, "iterations": 3}}
    path = tmp_path / "rtx.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def rows(home, query):
    with sqlite3.connect(home / "farm.db") as connection:
        connection.row_factory = sqlite3.Row
        return [dict(r) for r in connection.execute(query)]


@pytest.mark.slow
@pytest.mark.parametrize("which", ["det", "rec"])
def test_farm_run_builds_rtx_engines_on_cpu(which, request, rtx, tmp_path, cli_env, farm_home):
    model = request.getfixturevalue(f"{which}_model")
    result = farm(["run", write_spec(tmp_path, model, PROFILES[which])], cli_env, tmp_path)
    assert result.returncode == 0, result.stderr
    jobs = rows(farm_home, "select id, status, error, precision, profile, artifact_sha256 from jobs")
    assert len(jobs) == 6 and {(j["precision"], j["profile"]) for j in jobs} == {
        (p, prof["name"]) for p in ("fp32", "fp16", "int8") for prof in PROFILES[which]}
    for job in jobs:
        assert job["status"] == "unsupported", job
        assert "tensorrt-rtx engines run only on a GPU (compute capability 8.0, 8.6, 8.9, 12.0, 12.1)" in job["error"]
        assert job["artifact_sha256"]
    store = open_store()
    for measurement in rows(farm_home, "select job_id, build_info, unsupported_reason, measured from measurements"):
        info = json.loads(measurement["build_info"])
        assert measurement["measured"] == 0 and measurement["unsupported_reason"]
        assert info["runs_on"]["library"] == "tensorrt-rtx" and info["runs_on"]["gpu_only"] is True
        assert store.exists(info["artifact_sha256"])
        extras = info["extra_artifacts"]
        metadata = json.loads(store.get_bytes(extras["engine-metadata"]))
        assert metadata["engine_bytes"] > 0 and metadata["built_on"]["kind"] == "cpu"
        assert metadata["layers"]["available"] is False
        precision = info["precision_model"]["precision"]
        if precision != "fp32":
            assert store.exists(extras[f"onnx-{precision}"])
    kinds = {r["kind"] for r in rows(farm_home, "select kind from artifacts")}
    assert {"engine", "engine-metadata", "onnx-fp16", "onnx-int8"} <= kinds
