"""Quantization recipes per backend and pre-quantized models (issue 22), on
PP-OCR's text-direction classifier from the rapidocr_onnxruntime wheel with
rendered text lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from farm.quantized import quantized_node_counts
from tests.real_models import by_key, text_images
from workers.precision.int8 import NothingQuantized, quantize_int8
from workers.precision.recipes import recipe

pytestmark = pytest.mark.slow  # real models quantized and calibrated (tens of seconds each)


@pytest.fixture(scope="module")
def cls_model() -> Path:
    path = by_key("ppocr-cls").locate()
    if path is None:
        pytest.skip("rapidocr_onnxruntime (test extra) is not installed")
    return path


def feeds(count: int = 4):
    images = text_images(count, 48, 192, seed=5)
    return [{"x": images[i:i + 1]} for i in range(count)]


def zero_point_types(path: Path) -> set[int]:
    model = onnx.load(str(path))
    inits = {i.name: i.data_type for i in model.graph.initializer}
    return {inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2}


def test_onnxruntime_recipe_is_u8s8_on_all_ops_and_tensorrt_recipe_is_symmetric_int8(cls_model, tmp_path):
    ort_path = quantize_int8(cls_model, tmp_path / "ort.onnx", feeds(), how=recipe("onnxruntime"))
    trt_path = quantize_int8(cls_model, tmp_path / "trt.onnx", feeds(), tensorrt=True, method="entropy")
    assert zero_point_types(ort_path) == {TensorProto.UINT8}  # uint8 activations
    assert zero_point_types(trt_path) == {TensorProto.INT8}
    # ONNX Runtime's recipe quantizes more than the convolutions: every op it can
    assert quantized_node_counts(ort_path)["QuantizeLinear"] > quantized_node_counts(trt_path)["QuantizeLinear"]
    qop = quantize_int8(cls_model, tmp_path / "qop.onnx", feeds(), how=recipe("onnxruntime", "qoperator"),
                        method="percentile")
    assert "QLinearConv" in quantized_node_counts(qop)


def test_a_quantization_that_inserts_nothing_is_refused(tmp_path):
    # Only elementwise ops: TensorRT's recipe (Conv/MatMul/Gemm) has nothing to quantize.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "r"], ["y"])],
                              "plain", [x], [y])
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    rng = np.random.default_rng(0)
    with pytest.raises(NothingQuantized, match="inserted no quantized op"):
        quantize_int8(path, tmp_path / "q.onnx", [{"x": rng.normal(size=(1, 8)).astype(np.float32)}],
                      tensorrt=True)


def farm(args, cwd, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "farm", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_a_qdq_model_runs_as_given_and_int8_on_it_is_refused(cls_model, tmp_path):
    qdq = quantize_int8(cls_model, tmp_path / "cls_qdq.onnx", feeds(), how=recipe("onnxruntime"))
    np.savez(tmp_path / "lines.npz", x=text_images(8, 48, 192, seed=6))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env["FARM_HOME"] = str(tmp_path / "home")
    base = ("model: cls_qdq.onnx\nbackends: [onnxruntime]\nbatch_sizes: [2]\ndata: lines.npz\n"
            "profiles:\n  - name: p\n    inputs:\n      x: {min: [2, 3, 48, 192], opt: [2, 3, 48, 192], "
            "max: [2, 3, 48, 192]}\nmeasure: {warmup_ms: 5, duration_ms: 30, iterations: 3, max_remeasure: 0}\n")
    (tmp_path / "int8.yaml").write_text(base + "precisions: [fp32, int8]\n")
    refused = farm(["run", "int8.yaml"], tmp_path, env)
    assert refused.returncode == 1 and refused.stderr.startswith("Error: spec field 'precisions[1]': the model is "
                                                                 "already quantized (")
    assert "Traceback" not in refused.stderr
    (tmp_path / "model.yaml").write_text(base + "precisions: [model]\n")
    ran = farm(["run", "model.yaml", "--format", "json"], tmp_path, env)
    assert ran.returncode == 0, ran.stderr
    import json

    [row] = json.loads(ran.stdout)
    assert row["status"] == "done" and row["precision"] == "model"
    # The reference (ONNX Runtime on the model as given) and the job compute the same graph.
    assert row["accuracy_status"] == "pass" and row["accuracy_inputs"].startswith("data rows")


def scales(path: Path) -> list[float]:
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: i for i in graph.initializer}
    return [float(numpy_helper.to_array(inits[n.input[1]])) for n in graph.node
            if n.op_type == "QuantizeLinear" and n.input[1] in inits and numpy_helper.to_array(inits[n.input[1]]).size == 1]


@pytest.mark.slow
def test_entropy_calibration_is_not_minmax_in_disguise(cls_model, tmp_path):
    """ONNX Runtime's quantize_static alone gives its entropy calibrator 128 bins for 128 quantized
    bins: one candidate threshold, the full range, i.e. min-max's scales exactly. The farm computes
    the ranges on 512 bins: some activation ranges must come out narrower."""
    minmax = scales(quantize_int8(cls_model, tmp_path / "minmax.onnx", feeds(), method="minmax"))
    entropy = scales(quantize_int8(cls_model, tmp_path / "entropy.onnx", feeds(), method="entropy"))
    assert len(minmax) == len(entropy)
    assert any(e < m * 0.99 for e, m in zip(entropy, minmax))
    assert all(e <= m * 1.0001 for e, m in zip(entropy, minmax))  # a threshold never exceeds the range


def ort_quantize_static(cls_model: Path, out: Path) -> Path:
    """ONNX Runtime's own quantizer, as a user runs it: QDQ, at the model's opset (11)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.rows = iter(feeds())

        def get_next(self):
            return next(self.rows, None)

    quantize_static(str(cls_model), str(out), Reader(), quant_format=QuantFormat.QDQ)
    assert onnx.load(str(out)).opset_import[0].version < 13  # the case: per-axis DQ is not in this opset
    return out


def test_onnxruntime_quantize_static_model_survives_the_optimised_artifact(cls_model, tmp_path):
    import onnxruntime as ort

    from workers.backends.onnxruntime.backend import _drop_ignored_qdq_axis

    qdq = ort_quantize_static(cls_model, tmp_path / "cls_qdq11.onnx")
    optimized = tmp_path / "model.optimized.onnx"
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(optimized)
    given = ort.InferenceSession(str(qdq), options, providers=["CPUExecutionProvider"])
    _drop_ignored_qdq_axis(optimized)
    onnx.checker.check_model(onnx.load(str(optimized)))  # was: Unrecognized attribute: axis for DequantizeLinear
    load = ort.SessionOptions()
    load.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    artifact = ort.InferenceSession(str(optimized), load, providers=["CPUExecutionProvider"])
    x = feeds(2)[1]
    np.testing.assert_allclose(artifact.run(None, x)[0], given.run(None, x)[0], atol=1e-5)


@pytest.mark.slow
def test_onnxruntime_quantize_static_model_runs_under_model_precision(cls_model, tmp_path):
    ort_quantize_static(cls_model, tmp_path / "cls_qdq11.onnx")
    np.savez(tmp_path / "lines.npz", x=text_images(8, 48, 192, seed=6))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env["FARM_HOME"] = str(tmp_path / "home")
    (tmp_path / "model.yaml").write_text(
        "model: cls_qdq11.onnx\nbackends: [onnxruntime]\nbatch_sizes: [2]\ndata: lines.npz\nprecisions: [model]\n"
        "profiles:\n  - name: p\n    inputs:\n      x: {min: [2, 3, 48, 192], opt: [2, 3, 48, 192], "
        "max: [2, 3, 48, 192]}\nmeasure: {warmup_ms: 5, duration_ms: 30, iterations: 3, max_remeasure: 0}\n")
    ran = farm(["run", "model.yaml", "--format", "json"], tmp_path, env)
    assert ran.returncode == 0, ran.stderr
    import json

    [row] = json.loads(ran.stdout)
    assert row["status"] == "done", row
    assert row["precision"] == "model" and row["accuracy_status"] == "pass"
