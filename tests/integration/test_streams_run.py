"""`farm run` with a streams axis on a backend that measures one stream:
the one-stream job is measured, the others are refused at submit with the
reason (never built, never a one-stream figure under a two-stream label, and
no accuracy figure on a row that was not measured)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

SPEC = """\
name: streams-sweep
model: det.onnx
backends: [onnxruntime]
batch_sizes: [1]
streams: [1, 2]
profiles:
  - name: p32
    inputs:
      images: {min: [1, 3, 32, 32], opt: [1, 3, 32, 32], max: [1, 3, 32, 32]}
measure: {warmup_ms: 10, duration_ms: 30, iterations: 5, max_remeasure: 0, layer_profile: true}
"""


def farm(args, env, cwd) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "farm", *args], env=env, cwd=cwd, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def test_streams_axis_on_a_one_stream_backend(tmp_path, tiny_cnn):
    shutil.copy(tiny_cnn, tmp_path / "det.onnx")
    (tmp_path / "spec.yaml").write_text(SPEC)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env["FARM_HOME"] = str(tmp_path / "home")
    farm(["run", "spec.yaml"], env, tmp_path)
    sweep_id = json.loads(farm(["sweep", "list", "--format", "json"], env, tmp_path).stdout)[0]["sweep_id"]
    rows = json.loads(farm(["report", sweep_id, "--format", "json"], env, tmp_path).stdout)
    assert [r["status"] for r in rows] == ["done", "unsupported"]
    assert rows[0]["latency_p50_ms"] > 0
    assert rows[1]["error"] == "measure.streams is 2, but the onnxruntime runner measures one stream only"
    assert rows[1]["accuracy_status"] == "unchecked"  # the status of every row without a check
    figures = {k: v for k, v in rows[1].items()
               if k.startswith(("accuracy_pass", "accuracy_inputs", "rel_l2", "max_rel", "artifact"))}
    assert figures and all(v is None for v in figures.values()), figures
