"""Serving scenarios end to end on the CPU: ``farm run`` of a real pretrained
model (PP-OCR's text-direction classifier from the rapidocr wheel) under
ONNX Runtime, with the four MLPerf LoadGen scenarios at short durations.

What must hold on any machine, loaded or not: every scenario's LoadGen
validity is recorded; a Server load far above what the engine can serve
(20,000 QPS, every query arriving within milliseconds) is INVALID; an
INVALID run never gives a figure and never wins ``farm best``; CPU rows say
energy is not measured (never 0).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.real_models import by_key

TOO_HIGH = 20000
SPEC = f"""\
name: serving-cls
model: cls.onnx
backends: [onnxruntime]
batch_sizes: [1]
build: {{onnxruntime: {{intra_op_num_threads: 1}}}}
profiles:
  - name: p
    inputs:
      x: {{min: [1, 3, 48, 192], opt: [1, 3, 48, 192], max: [1, 3, 48, 192]}}
measure: {{warmup_ms: 20, duration_ms: 200, iterations: 10, max_remeasure: 0}}
scenarios:
  run: [single_stream, multi_stream, server, offline]
  min_duration_ms: 300
  min_query_count: 480
  max_query_count: 480
  samples_per_query: 2
  p99_ms: 150
  target_qps: [40, {TOO_HIGH}]
"""


def farm(args, env, cwd, ok=True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "farm", *args], env=env, cwd=cwd, capture_output=True,
                            text=True, timeout=600)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


@pytest.mark.slow
def test_scenarios_on_onnxruntime(tmp_path):
    model = by_key("ppocr-cls").locate()
    assert model is not None, "rapidocr_onnxruntime (test extra) ships the model"
    shutil.copy(model, tmp_path / "cls.onnx")
    (tmp_path / "spec.yaml").write_text(SPEC)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env["FARM_HOME"] = str(tmp_path / "home")
    farm(["run", "spec.yaml"], env, tmp_path)
    sweep_id = json.loads(farm(["sweep", "list", "--format", "json"], env, tmp_path).stdout)[0]["sweep_id"]
    [row] = json.loads(farm(["report", sweep_id, "--format", "json"], env, tmp_path).stdout)
    assert row["status"] == "done", row["error"]

    # CPU: energy is not measured, and says so (never 0).
    assert row["inferences_per_joule"] is None and row["joules_per_inference"] is None
    assert row["energy_source"].startswith("not measured")

    # Every scenario ran and carries LoadGen's verdict.
    verdicts = dict(part.split(":") for part in row["scenarios_validity"].split())
    assert set(verdicts) == {"single_stream", "multi_stream", "server", "offline"}
    assert set(verdicts.values()) <= {"VALID", "INVALID"}
    assert row["queue_delay_us"] == 0 and row["instances"] == 1 and row["server_p99_bound_ms"] == 150

    serving = _serving(tmp_path / "home" / "farm.db")
    for name in ("single_stream", "multi_stream", "offline"):
        result = serving["scenarios"][name]
        assert result["validity"] == verdicts[name]
        assert result["min_duration_met"] in (True, False) and result["early_stopping_met"] in (True, False)
        # A figure only where LoadGen said VALID.
        column = {"single_stream": "single_stream_p90_ms", "multi_stream": "multi_stream_p99_ms",
                  "offline": "offline_samples_per_s"}[name]
        assert (row[column] is not None) == (result["validity"] == "VALID")
    runs = {r["target_qps"]: r for r in serving["scenarios"]["server"]["runs"]}
    assert set(runs) == {40, TOO_HIGH}
    too_high = runs[TOO_HIGH]
    assert too_high["validity"] == "INVALID"
    assert too_high["p99_ms"] > 150 and too_high["perf_constraints_met"] is False
    assert serving["loadgen_summaries_sha256"]

    # The invalid load never wins: the winner (if any load was valid) is the valid one.
    best = farm(["best", "--sweep", sweep_id, "--objective", "server-qps", "--format", "json"], env, tmp_path,
                ok=False)
    if runs[40]["validity"] == "VALID":
        assert best.returncode == 0, best.stderr
        [winner] = json.loads(best.stdout)
        assert winner["objective_value"] == 40 == winner["server_qps"]
    else:  # the loaded machine missed the bound at 40 QPS too: nothing is valid, nothing wins
        assert row["server_qps"] is None
        assert best.returncode == 1 and best.stderr.startswith("Error: no finished configuration")


def _serving(db) -> dict:
    import sqlite3

    with sqlite3.connect(db) as connection:
        [(text,)] = connection.execute("SELECT serving FROM measurements").fetchall()
    return json.loads(text)
