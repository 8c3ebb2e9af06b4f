"""Exporter quirks removed before any backend reads a model."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from farm.model_info import read_model
from workers.onnx_quirks import normalized_model


def _legacy_model(path):
    """Conv + BatchNormalization whose parameters are ConstantOfShape of shape
    initializers, all initializers listed as inputs: what onnx's 'light' zoo
    models (IR 3) look like, and what ONNX Runtime's Conv+BN fusion trips on."""
    weight = numpy_helper.from_array(np.linspace(-1, 1, 4 * 3 * 3 * 3, dtype=np.float32).reshape(4, 3, 3, 3), "w")
    params = {"scale": 2.0, "bias": 0.5, "mean": 0.25, "var": 1.0}
    shapes = [numpy_helper.from_array(np.array([4], np.int64), f"{name}__SHAPE") for name in params]
    nodes = [helper.make_node("ConstantOfShape", [f"{name}__SHAPE"], [name],
                              value=helper.make_tensor("v", TensorProto.FLOAT, [1], [value]))
             for name, value in params.items()]
    nodes += [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
              helper.make_node("BatchNormalization", ["c", *params], ["y"], epsilon=0.0)]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])]
    inputs += [helper.make_tensor_value_info(init.name, init.data_type, init.dims) for init in [weight, *shapes]]
    graph = helper.make_graph(nodes, "legacy", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [weight, *shapes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 3
    onnx.save(model, path)
    return path


def _optimised_then_run(model_path, tmp_path, x):
    """What the onnxruntime backend does: optimise and save, then load the saved model and run it."""
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / f"{model_path.stem}.opt.onnx")
    ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    session = ort.InferenceSession(options.optimized_model_filepath, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_the_copy_has_only_real_inputs_and_survives_ort_optimisation(tmp_path):
    legacy = _legacy_model(tmp_path / "legacy.onnx")
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    expected = ort.InferenceSession(str(legacy), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert [i.name for i in read_model(legacy).inputs] == ["x"]
    with pytest.raises(ValueError, match="__SHAPE"):  # the failure this module exists for
        _optimised_then_run(legacy, tmp_path, x)
    fixed = normalized_model(legacy)
    assert fixed != legacy and [i.name for i in onnx.load(str(fixed)).graph.input] == ["x"]
    np.testing.assert_allclose(_optimised_then_run(fixed, tmp_path, x), expected, rtol=1e-5, atol=1e-5)
    assert normalized_model(legacy) == fixed  # made once


def test_a_current_model_is_used_as_it_is(tmp_path, tiny_cnn):
    assert normalized_model(tiny_cnn) == tiny_cnn
    assert normalized_model(tiny_cnn) == tiny_cnn  # decided once: a marker beside it
    assert not list(tiny_cnn.parent.glob("*.normalized.onnx"))


def test_placeholder_dim_names_become_unnamed_axes(tmp_path):
    """PP-OCR's classifier names both H and W "?"; TensorRT would tie them together."""
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 3, "?", "?"])]
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, "?", "?"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "cls.onnx")
    fixed = onnx.load(str(normalized_model(tmp_path / "cls.onnx")))
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in (*fixed.graph.input,
                                                                                      *fixed.graph.output)]
    assert dims == [[-1, 3, 0, 0], ["n", 3, 0, 0]]  # real names stay
