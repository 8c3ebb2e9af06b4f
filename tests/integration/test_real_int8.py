"""Issue 22 on real pretrained models (PP-OCRv4 det/rec, PP-OCR cls from the
rapidocr_onnxruntime wheel) with realistic inputs the test renders: int8
calibrated and evaluated on disjoint rows, task metrics recomputed here
independently from the stored artifact, synthetic-only int8 never ``pass``."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.real_models import by_key, text_images

pytestmark = pytest.mark.slow
ROWS = 16  # 8 calibration + 8 evaluation rows (the default split: half each)


def farm(args, env, cwd) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "farm", *args], env=env, cwd=cwd, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def spec(name: str, model: str, shape: list[int], metrics: str, data: bool = True) -> str:
    return (f"name: {name}\nmodel: {model}\nbackends: [onnxruntime]\nprecisions: [fp32, int8]\nbatch_sizes: [4]\n"
            f"profiles:\n  - name: p\n    inputs:\n      x: {{min: {shape}, opt: {shape}, max: {shape}}}\n"
            f"measure: {{warmup_ms: 5, duration_ms: 30, iterations: 3, max_remeasure: 0}}\n"
            f"accuracy: {{metrics: {metrics}}}\n" + (f"data: {name}.npz\n" if data else ""))


def directions(batch: int, seed: int) -> np.ndarray:
    """Text lines, every other one upside down (the classifier's two classes)."""
    images = text_images(batch, 48, 192, seed=seed)
    images[1::2] = images[1::2, :, ::-1, ::-1]
    return images


CASES = {
    # name: (panel model, shape, inputs, metrics)
    "det": ("ppocr-det", [4, 3, 160, 160], lambda: text_images(ROWS, 160, 160, seed=1),
            "[{output: sigmoid_0.tmp_0, metric: iou, threshold: 0.3, min: 0.5}]"),
    "rec": ("ppocr-rec", [4, 3, 48, 160], lambda: text_images(ROWS, 48, 160, seed=2),
            "[{output: softmax_11.tmp_0, metric: sequence, min: 0.5}, "
            "{output: softmax_11.tmp_0, metric: edit_distance, max: 0.5}]"),
    "cls": ("ppocr-cls", [4, 3, 48, 192], lambda: directions(ROWS, seed=3),
            "[{output: save_infer_model/scale_0.tmp_1, metric: topk, k: 1, min: 0.5}]"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("real-int8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env["FARM_HOME"] = str(cwd / "home")
    outputs = {}
    for name, (key, shape, make, metrics) in CASES.items():
        model = by_key(key).locate()
        if model is None:
            pytest.skip("rapidocr_onnxruntime (test extra) is not installed")
        shutil.copy(model, cwd / f"{name}.onnx")
        np.savez(cwd / f"{name}.npz", x=make())
        (cwd / f"{name}.yaml").write_text(spec(name, f"{name}.onnx", shape, metrics))
        outputs[name] = farm(["run", f"{name}.yaml"], env, cwd)
    (cwd / "synthetic.yaml").write_text(spec("synthetic", "cls.onnx", [4, 3, 48, 192], "[]", data=False))
    outputs["synthetic"] = farm(["run", "synthetic.yaml"], env, cwd)
    return cwd, env, outputs


def measurements(home: Path, sweep: str) -> dict[str, dict]:
    with sqlite3.connect(home / "farm.db") as db:
        rows = db.execute("select j.precision, m.accuracy, m.accuracy_status, m.accuracy_inputs, j.artifact_sha256, "
                          "j.config from measurements m join jobs j on j.id = m.job_id join sweeps s "
                          "on s.id = j.sweep_id where s.name = ?", (sweep,)).fetchall()
    return {p: {"accuracy": json.loads(a), "status": s, "inputs": i, "artifact": k, "config": json.loads(c)}
            for p, a, s, i, k, c in rows}


def stored(home: Path, key: str) -> Path:
    return next(p for p in (home / "artifacts").rglob(key[2:]) if p.is_file())


def run_model(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {"x": x[i:i + 4]})[0] for i in range(0, len(x), 4)])


def recompute(runs, name: str):
    """fp32 and the stored int8 artifact on the evaluation rows, run here."""
    cwd, _, _ = runs
    jobs = measurements(cwd / "home", name)
    start, stop = jobs["int8"]["config"]["rows"]["evaluation"]
    x = np.load(cwd / f"{name}.npz")["x"][start:stop]
    return jobs, run_model(cwd / f"{name}.onnx", x), run_model(stored(cwd / "home", jobs["int8"]["artifact"]), x)


def metric(record: dict, output: str, prefix: str) -> dict:
    return next(m for m in record["accuracy"]["per_output"][output]["metrics"] if m["metric"].startswith(prefix))


def test_calibration_and_evaluation_rows_are_disjoint(runs):
    cwd, _, _ = runs
    for name in CASES:
        jobs = measurements(cwd / "home", name)
        rows = jobs["int8"]["config"]["rows"]
        cal, ev = range(*rows["calibration"]), range(*rows["evaluation"])
        assert len(cal) == ROWS // 2 and len(ev) == ROWS // 2 and not set(cal) & set(ev)
        inputs = jobs["int8"]["accuracy"]["inputs"]
        assert inputs["source"] == "data" and inputs["rows"] == rows["evaluation"] and inputs["count"] == len(ev)
        assert inputs["calibration_rows"] == rows["calibration"]
        assert jobs["int8"]["inputs"] == f"data rows {ev.start}-{ev.stop - 1} ({len(ev)})"
        # fp32 jobs of the sweep are evaluated on the same rows
        assert jobs["fp32"]["accuracy"]["inputs"]["rows"] == rows["evaluation"]
        assert jobs["int8"]["status"] in ("pass", "fail")


def test_map_iou_equals_an_independent_recomputation(runs):
    jobs, fp32, int8 = recompute(runs, "det")
    expected = [np.logical_and(a > 0.3, e > 0.3).sum() / max(np.logical_or(a > 0.3, e > 0.3).sum(), 1)
                if np.logical_or(a > 0.3, e > 0.3).any() else 1.0 for a, e in zip(int8, fp32)]
    got = metric(jobs["int8"], "sigmoid_0.tmp_0", "iou")
    assert got["samples"] == len(expected)
    assert got["value"] == pytest.approx(float(np.mean(expected)), abs=1e-9)
    assert fp32.max() > 0.3, "the rendered pages must give the detector text to find"


def _greedy(probs: np.ndarray) -> list[int]:
    ids = probs.argmax(-1)
    return [int(c) for i, c in enumerate(ids) if c != 0 and (i == 0 or c != ids[i - 1])]


def test_sequence_agreement_equals_an_independent_recomputation(runs):
    jobs, fp32, int8 = recompute(runs, "rec")
    same = [_greedy(a) == _greedy(e) for a, e in zip(int8, fp32)]
    got = metric(jobs["int8"], "softmax_11.tmp_0", "sequence")
    assert got["value"] == pytest.approx(float(np.mean(same)), abs=1e-9)
    assert any(_greedy(e) for e in fp32), "the rendered lines must decode to something"


def test_top1_agreement_equals_an_independent_recomputation(runs):
    jobs, fp32, int8 = recompute(runs, "cls")
    agree = (int8.argmax(-1) == fp32.argmax(-1)).astype(float)
    got = metric(jobs["int8"], "save_infer_model/scale_0.tmp_1", "topk")
    assert got["value"] == pytest.approx(float(agree.mean()), abs=1e-9)
    lo, hi = got["ci"]
    assert lo <= got["value"] <= hi
    assert len(set(fp32.argmax(-1))) == 2, "both text directions are in the evaluation rows"


def test_synthetic_only_int8_is_never_pass(runs):
    cwd, _, outputs = runs
    jobs = measurements(cwd / "home", "synthetic")
    assert jobs["int8"]["status"] == "unchecked"
    assert jobs["int8"]["accuracy"]["reason"] == "synthetic inputs"
    assert jobs["int8"]["inputs"].startswith("synthetic")
    assert "unchecked (synthetic inputs)" in outputs["synthetic"].stdout
    assert outputs["synthetic"].stderr.count("no 'data:' in the spec") == 1
    assert all("no 'data:'" not in outputs[name].stderr for name in CASES)
