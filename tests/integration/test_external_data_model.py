"""A model whose initializers live in a side file, end to end on the CPU:
submitted as one model (graph + data file), shipped to the worker through
the store, both files fetched hash-verified into one folder, built and
measured by ONNX Runtime (fp32 and int8), and a changed cached data file is
fetched again before the next job uses it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest
import yaml

from farm.store.base import hash_file
from tests.farm.test_model_bundle import external_model
from tests.integration.conftest import REPO

pytestmark = pytest.mark.slow


def _run(cwd, env, spec: str, *more: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "farm", "run", spec, *more, "--format", "json"], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=400)


def test_external_data_model_swept_end_to_end(tmp_path, tiny_cnn):
    graph = external_model(tmp_path / "models", tiny_cnn)
    spec = {"name": "ext", "model": "models/det.onnx", "backends": ["onnxruntime"], "precisions": ["fp32", "int8"],
            "batch_sizes": [1], "devices": "cpu",
            "profiles": [{"name": "p32", "inputs": {"images": {"min": [1, 3, 32, 32], "opt": [1, 3, 32, 32],
                                                               "max": [1, 3, 32, 32]}}}],
            "measure": {"warmup_ms": 5, "duration_ms": 40, "iterations": 5, "max_remeasure": 0}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env.update(FARM_HOME=str(home), PYTHONPATH=str(REPO))
    first = _run(tmp_path, env, "spec.yaml")
    assert first.returncode == 0, first.stderr
    assert {row["status"] for row in json.loads(first.stdout)} == {"done"}
    with sqlite3.connect(home / "farm.db") as db:
        [(sha256, key, size)] = db.execute("select sha256, artifact_sha256, size_bytes from models").fetchall()
        accuracy = db.execute("select accuracy_status from measurements").fetchall()
    assert sha256 == key and size == graph.stat().st_size + (tmp_path / "models" / "det.onnx.data").stat().st_size
    assert {a for (a,) in accuracy} <= {"reference", "pass", "unchecked"}
    # The worker's copy: the manifest, and both files in one folder, each matching its hash.
    models = home / "cache" / "models"
    body = json.loads((models / f"{sha256}.manifest.json").read_bytes())
    assert hash_file(models / f"{sha256}.manifest.json") == key
    data = models / sha256 / "det.onnx.data"
    assert hash_file(models / sha256 / "model.onnx") == body["graph"] == hash_file(graph)
    assert hash_file(data) == body["data"][0]["sha256"] == hash_file(tmp_path / "models" / "det.onnx.data")
    # A changed cached data file is not used: the next run's worker fetches it again (verified).
    data.write_bytes(b"\0" * data.stat().st_size)
    second = _run(tmp_path, env, "spec.yaml", "--force")
    assert second.returncode == 0, second.stderr
    assert {row["status"] for row in json.loads(second.stdout)} == {"done"}
    assert hash_file(data) == body["data"][0]["sha256"]
