"""Every refusal is one line (issue 24, finding 3): a backend classifies its
own errors (unsupported vs failed), names the first relevant node or
operator, carries no worker paths, and cuts long lists with a count."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from workers.refusals import cut, one_line


def _quantized_chain(path, links: int) -> None:
    """``links`` x (DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul):
    4 nodes each, two of which the TensorRT parser has no importer for, and
    DynamicQuantizeLinear has no float16 form (an fp16 conversion breaks it)."""
    nodes, previous = [], "x"
    for i in range(links):
        nodes += [helper.make_node("DynamicQuantizeLinear", [previous], [f"q{i}", f"s{i}", f"z{i}"]),
                  helper.make_node("MatMulInteger", [f"q{i}", "w", f"z{i}"], [f"a{i}"]),
                  helper.make_node("Cast", [f"a{i}"], [f"c{i}"], to=TensorProto.FLOAT),
                  helper.make_node("Mul", [f"c{i}", f"s{i}"], [f"m{i}"])]
        previous = f"m{i}"
    nodes.append(helper.make_node("Identity", [previous], ["y"]))
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
                              initializer=[numpy_helper.from_array(np.ones((4, 4), np.int8), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_one_line_strips_paths_and_says_a_repeat_once():
    text = ("batch 8 is above the profile's max 4 (/tmp/job-1a2b/model.onnx)\n; batch 8 is above the profile's max "
            "4 (/tmp/job-1a2b/model.onnx); at /_src/optimizer/shape/shapeContext.cpp:4633")
    line = one_line(text)
    assert "\n" not in line and "/tmp/" not in line and "/_src/" not in line
    assert line == "batch 8 is above the profile's max 4 (model.onnx) (x2); at shapeContext.cpp:4633"
    assert cut([f"node #{i}: not supported" for i in range(44)], "more nodes") == (
        "node #0: not supported; node #1: not supported; node #2: not supported; and 41 more nodes")
    assert len(one_line("x" * 5000)) == 600
    # A path the user gave (a plugin library) stays whole.
    assert one_line("plugin library '/opt/plugins/libx.so' does not exist") == (
        "plugin library '/opt/plugins/libx.so' does not exist")


def test_onnxruntime_classifies_a_missing_kernel_as_unsupported(tmp_path):
    import onnxruntime as ort

    from workers.backends.onnxruntime.backend import OnnxRuntimeBackend

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "bf16.onnx"
    onnx.save(model, str(path))
    with pytest.raises(Exception) as caught:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    reason = OnnxRuntimeBackend.classify(caught.value, "fp32")
    assert reason.startswith("ONNX Runtime cannot run the model at fp32: Could not find an implementation for Relu")
    assert "\n" not in reason and str(tmp_path) not in reason
    assert OnnxRuntimeBackend.classify(RuntimeError("a bug"), "fp32") is None  # a failure keeps its traceback


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tensorrt_rtx_bindings") is None, reason="needs TensorRT-RTX")
def test_tensorrt_rtx_refusals_are_one_line_naming_the_first_nodes(tmp_path):
    """A real TensorRT-RTX build on this CPU: fp16 of a DynamicQuantizeLinear
    model ended ``failed`` with a 1,856-character traceback; the parser's
    refusal listed all 44 nodes."""
    _quantized_chain(tmp_path / "chain.onnx", links=22)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FARM_", "AWS_"))}
    env["FARM_HOME"] = str(tmp_path / "home")
    result = subprocess.run([sys.executable, "-m", "farm", "run", "--model", "chain.onnx", "--profile",
                             "p:x=1x4/2x4/4x4", "--backend", "tensorrt-rtx", "--precision", "fp16", "--precision",
                             "fp32", "--warmup-ms", "0", "--duration-ms", "20", "--iterations", "3", "--format",
                             "json"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    jobs = {job["precision"]: job for job in json.loads(result.stdout)}
    for job in jobs.values():
        assert job["status"] == "unsupported", job
        error = job["error"]
        assert "\n" not in error and "Traceback" not in error and str(tmp_path) not in error, error
        assert len(error) < 400, error
    assert jobs["fp16"]["error"].startswith("preparing the model for fp16: DynamicQuantizeLinear does not accept it")
    assert jobs["fp32"]["error"] == (
        "the ONNX parser rejected the model: node #0 (DynamicQuantizeLinear): not supported by this parser; node #1 "
        "(MatMulInteger): not supported by this parser; node #4 (DynamicQuantizeLinear): not supported by this "
        "parser; and 41 more nodes")
