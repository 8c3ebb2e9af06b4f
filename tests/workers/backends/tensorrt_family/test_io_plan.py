"""The runtime's decisions, checked on descriptions of REAL networks that
TensorRT-RTX parses and builds on this CPU-only machine from generated ONNX
models: a Reshape fed by a shape input, an NMS output (data-dependent
shape), two optimization profiles, Q/DQ int8 and fp16. What was built
(profile shape inputs, shape tensors, flags, TF32 off) is read back from
the real network, profile and config objects."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from farm.errors import BackendUnsupported
from workers.backends.tensorrt_family import io_plan
from workers.backends.tensorrt_family.builder import add_profiles, apply_knobs, build_engine, parse_onnx
from workers.backends.tensorrt_family.capabilities import TENSORRT_RTX
from workers.backends.tensorrt_family.io_plan import EngineError, Range
from workers.backends.tensorrt_family.library import logger_for


def _save(tmp_path, name, nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def reshape_model(tmp_path):
    """y = Reshape(x, shape): ``shape`` is an int64 model input TensorRT must read on the host."""
    return _save(tmp_path, "reshape", [helper.make_node("Reshape", ["x", "shape"], ["y"])],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 12]),
                  helper.make_tensor_value_info("shape", TensorProto.INT64, [3])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])


def nms_model(tmp_path):
    """NonMaxSuppression: how many boxes survive depends on the scores."""
    return _save(tmp_path, "nms", [helper.make_node("NonMaxSuppression", ["boxes", "scores", "maxo", "iou"], ["sel"])],
                 [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 50, 4]),
                  helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, 50])],
                 [helper.make_tensor_value_info("sel", TensorProto.INT64, [None, 3])],
                 [numpy_helper.from_array(np.array([10], np.int64), "maxo"),
                  numpy_helper.from_array(np.array([0.5], np.float32), "iou")])


def qdq_model(tmp_path, fp16=False):
    """Q/DQ int8 around a MatMul (or the same MatMul in fp16 with fp16 I/O)."""
    rng = np.random.default_rng(0)
    weight = rng.normal(0, 0.2, (16, 8)).astype(np.float16 if fp16 else np.float32)
    kind = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    if fp16:
        nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
        inits = [numpy_helper.from_array(weight, "w")]
    else:
        nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
                 helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
                 helper.make_node("MatMul", ["xd", "w"], ["y"])]
        inits = [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(np.array(0.05, np.float32), "s"),
                 numpy_helper.from_array(np.array(0, np.int8), "z")]
    return _save(tmp_path, "fp16" if fp16 else "qdq", nodes, [helper.make_tensor_value_info("x", kind, ["n", 16])],
                 [helper.make_tensor_value_info("y", kind, ["n", 8])], inits)


def network(rtx, path):
    logger = logger_for(rtx)
    builder = rtx.Builder(logger)
    net, parser = parse_onnx(rtx, builder, path, logger)
    return builder, net, parser


class Knobs:
    builder_optimization_level = workspace_mb = max_aux_streams = None
    tf32: bool | None = None

    def targets(self, precision=None):
        return ("8.6",)


def test_shape_input_is_host_memory_and_gets_set_shape_input(rtx, tmp_path):
    builder, net, _parser = network(rtx, reshape_model(tmp_path))
    descs = io_plan.describe_network(net)
    by_name = {d.name: d for d in descs}
    assert by_name["shape"].shape_tensor and not by_name["x"].shape_tensor
    assert io_plan.input_memory(by_name["shape"]) == "host" and io_plan.input_memory(by_name["x"]) == "device"
    assert by_name["y"].shape == (-1, -1, -1)  # sized by the shape input's values, not its shape
    config = builder.create_builder_config()
    shapes = {"x": {"min": [1, 12], "opt": [2, 12], "max": [4, 12]}, "shape": {"min": [3], "opt": [3], "max": [3]}}
    ranges = add_profiles(rtx, builder, config, descs, [shapes], {"shape": [2, 3, 4]})
    # Read back from the real IOptimizationProfile: values for the shape tensor, shapes for x.
    assert ranges == [{"x": Range((1, 12), (2, 12), (4, 12)), "shape": Range((2, 3, 4), (2, 3, 4), (2, 3, 4), True)}]
    with pytest.raises(EngineError, match="'shape' is a shape tensor .* give them in the spec's data:"):
        io_plan.profile_calls(descs, shapes, {})


def test_reshape_engine_builds_for_the_values_it_runs_with(rtx, tmp_path):
    shapes = {"x": {"min": [1, 12], "opt": [2, 12], "max": [2, 12]}, "shape": {"min": [3], "opt": [3], "max": [3]}}
    built = build_engine(rtx, TENSORRT_RTX, Knobs(), reshape_model(tmp_path), shapes, "fp32",
                         shape_values={"shape": [2, 3, 4]})
    assert len(built.serialized) > 1000
    assert built.settings["profile_ranges"] == [{
        "x": {"min": [1, 12], "opt": [2, 12], "max": [2, 12], "kind": "shape"},
        "shape": {"min": [2, 3, 4], "opt": [2, 3, 4], "max": [2, 3, 4], "kind": "values"}}]
    assert {"name": "shape", "dtype": "int64", "shape": [3], "shape_tensor": True} in built.inputs
    assert built.settings["strongly_typed"] is True and built.settings["tf32"] is False


def test_data_dependent_output_needs_the_allocator_and_no_graph(rtx, tmp_path):
    path = nms_model(tmp_path)
    _builder, net, _parser = network(rtx, path)
    descs = io_plan.describe_network(net)
    (sel,) = io_plan.outputs(descs)
    assert sel.shape == (-1, 3) and io_plan.is_data_dependent(sel, descs)
    assert io_plan.output_memory(sel.shape) == "allocator"
    assert not any(io_plan.is_data_dependent(d, descs) for d in io_plan.inputs(descs))
    plan, why = io_plan.graph_plan(True, ["sel"], None, runtime_graphs=True)
    assert plan == "off" and "sel have data-dependent shapes" in why
    # TensorRT-RTX 1.7 has no kernel for it on any target: its own words say which layer.
    with pytest.raises(BackendUnsupported, match="could not build the engine: .*no runners"):
        build_engine(rtx, TENSORRT_RTX, Knobs(), path, {}, "fp32")


def test_a_dynamic_output_fed_by_dynamic_inputs_is_not_called_data_dependent(rtx, tmp_path):
    _builder, net, _parser = network(rtx, reshape_model(tmp_path))
    descs = io_plan.describe_network(net)
    assert not io_plan.is_data_dependent(io_plan.outputs(descs)[0], descs)
    # ... its size is only known once the context has the inputs: then it is static.
    assert io_plan.output_memory((2, 3, 4)) == "static"


def test_two_profiles_and_which_one_a_context_uses(rtx, tmp_path):
    small = {"x": {"min": [1, 16], "opt": [2, 16], "max": [4, 16]}}
    large = {"x": {"min": [5, 16], "opt": [8, 16], "max": [16, 16]}}
    builder, net, _parser = network(rtx, qdq_model(tmp_path))
    descs = io_plan.describe_network(net)
    config = builder.create_builder_config()
    ranges = add_profiles(rtx, builder, config, descs, [small, large], {})
    assert config.num_optimization_profiles == 2
    assert io_plan.pick_profile(ranges, {"x": (1, 16)}, {}) == 0
    assert io_plan.pick_profile(ranges, {"x": (8, 16)}, {}) == 1
    with pytest.raises(EngineError) as outside:
        io_plan.pick_profile(ranges, {"x": (32, 16)}, {})
    assert str(outside.value) == ("no optimization profile of the engine takes these inputs (profile 0: x shape "
                                  "[32, 16] outside 1x16/2x16/4x16; profile 1: x shape [32, 16] outside "
                                  "5x16/8x16/16x16)")
    built = build_engine(rtx, TENSORRT_RTX, Knobs(), qdq_model(tmp_path), [small, large], "int8")
    assert len(built.settings["profile_ranges"]) == 2 and len(built.serialized) > 1000


def test_qdq_and_fp16_networks_keep_their_types_and_tf32_is_explicit(rtx, tmp_path):
    builder, net, _parser = network(rtx, qdq_model(tmp_path))
    layer_types = {net.get_layer(i).type for i in range(net.num_layers)}
    assert {rtx.LayerType.QUANTIZE, rtx.LayerType.DEQUANTIZE} <= layer_types
    assert [d.dtype for d in io_plan.describe_network(net)] == ["float", "float"]
    config = builder.create_builder_config()
    assert config.get_flag(rtx.BuilderFlag.TF32)  # TensorRT's own default: on
    apply_knobs(rtx, TENSORRT_RTX, config, Knobs(), "int8")
    assert not config.get_flag(rtx.BuilderFlag.TF32)  # the farm's: off unless asked
    asked = Knobs()
    asked.tf32 = True
    apply_knobs(rtx, TENSORRT_RTX, config, asked, "int8")
    assert config.get_flag(rtx.BuilderFlag.TF32)
    _b, half, _p = network(rtx, qdq_model(tmp_path, fp16=True))
    assert [d.dtype for d in io_plan.describe_network(half)] == ["half", "half"]
    assert np.dtype(rtx.nptype(half.get_input(0).dtype)) == np.float16
    built = build_engine(rtx, TENSORRT_RTX, Knobs(), qdq_model(tmp_path, fp16=True),
                         {"x": {"min": [1, 16], "opt": [4, 16], "max": [8, 16]}}, "fp16")
    assert built.settings["strongly_typed"] is True and built.settings["tf32"] is False
    assert built.engine is None  # no engine object on a CPU: nothing deserialized a second time


def test_a_shape_tensor_job_through_the_backend_uses_the_users_data(rtx, farm_home, tmp_path):
    from tests.workers.backends.tensorrt_family.test_rtx_build import job
    from workers.backends import load_backend

    path = reshape_model(tmp_path)
    shapes = {"x": {"min": [1, 12], "opt": [2, 12], "max": [2, 12]}, "shape": {"min": [3], "opt": [3], "max": [3]}}
    ctx = job(tmp_path, path, "fp32", shapes)
    with pytest.raises(EngineError, match="'shape' is a shape tensor"):
        load_backend("tensorrt-rtx").build(ctx)  # random numbers are no shape: refused, not guessed
    ctx.data = {"x": np.ones((4, 12), np.float32), "shape": np.array([2, 6, 2], np.int64)}
    built = load_backend("tensorrt-rtx").build(ctx)
    assert built.info["resolved"]["profile_ranges"][0]["shape"]["opt"] == [2, 6, 2]
    assert built.info["resolved"]["tf32"] is False


def test_a_shape_output_is_an_execution_tensor_and_only_shape_tensors_live_on_the_host(rtx, tmp_path):
    path = _save(tmp_path, "shapeout", [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Relu", ["x"], ["y"])],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
                 [helper.make_tensor_value_info("s", TensorProto.INT64, [2]),
                  helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])])
    _builder, net, _parser = network(rtx, path)
    outs = {d.name: d for d in io_plan.outputs(io_plan.describe_network(net))}
    # TensorRT computes Shape's result as an ordinary device tensor here.
    assert outs["s"].shape == (2,) and not outs["s"].shape_tensor
    assert io_plan.output_memory(outs["s"].shape, outs["s"].shape_tensor) == "static"
    assert io_plan.output_memory((2,), shape_tensor=True) == "host"
