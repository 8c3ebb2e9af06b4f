"""The static ONNX import on the opset-18/20 forms torch.onnx's dynamo
exporter writes (what a .pt2 the farm converts becomes): ReduceMean/Max/Min
with axes as an input, Gelu as one op. onnx2torch 1.5 converts neither;
without them the torch backend could not measure a converted PyTorch model
through ONNX. Checked against ONNX Runtime."""

from __future__ import annotations

import importlib.util

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

torch = pytest.importorskip("torch")
if importlib.util.find_spec("onnx2torch") is None:
    pytest.skip("needs onnx2torch", allow_module_level=True)
pytest.importorskip("onnxscript")


def test_reduce_18_and_gelu_20_match_onnxruntime(tmp_path):
    import onnxruntime as ort

    from workers.backends.torch.onnx_import import onnx_to_module

    axes = numpy_helper.from_array(np.array([1, -1], np.int64), "axes")
    nodes = [helper.make_node("Gelu", ["x"], ["g"], name="gelu_exact"),
             helper.make_node("Gelu", ["x"], ["t"], name="gelu_tanh", approximate="tanh"),
             helper.make_node("Add", ["g", "t"], ["s"]),
             helper.make_node("ReduceMean", ["s", "axes"], ["mean"], name="mean_kept"),
             helper.make_node("ReduceMax", ["s", "axes"], ["max"], name="max_dropped", keepdims=0),
             helper.make_node("ReduceMin", ["s"], ["min"], name="min_all", keepdims=0)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("mean", "max", "min")],
                              [axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 9
    path = tmp_path / "opset20.onnx"
    onnx.save(model, path)
    module, _ = onnx_to_module(path, {"x": (2, 3, 4)})
    x = np.random.default_rng(0).uniform(-2, 2, (2, 3, 4)).astype(np.float32)
    with torch.no_grad():
        got = [t.numpy() for t in module(torch.from_numpy(x))]
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for a, b in zip(got, want):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
