"""torch backend pieces that run without a GPU."""

from __future__ import annotations

import importlib.util

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from farm.backends import backend_config
from farm.errors import BackendUnsupported
from workers.backends.torch.backend import resolve_mode
from workers.backends.torch.model_source import inline_identity_initializers, model_format


def test_registered_as_gpu_backend():
    config = backend_config("torch")
    assert config.precisions == ("fp32", "fp16", "bf16") and config.device_kinds == ("gpu",)
    assert config.from_dict({"mode": "max-autotune"}).resolved() == {"mode": "max-autotune"}


@pytest.mark.parametrize("mode, graph, expected", [
    (None, None, ("default", True)),  # the fast compile, graphs on: what a spec without build/measure gets
    (None, False, ("default", False)),
    ("max-autotune", None, ("max-autotune-no-cudagraphs", True)),
    ("max-autotune-no-cudagraphs", None, ("max-autotune-no-cudagraphs", True)),
    ("max-autotune-no-cudagraphs", False, ("max-autotune-no-cudagraphs", False)),
    ("default", None, ("default", True)),
    ("default", False, ("default", False)),
    ("reduce-overhead", None, ("default", True)),
    ("reduce-overhead", False, ("default", False)),
])
def test_graphs_are_independent_of_the_compile_mode(mode, graph, expected):
    # Captured by the runner (one torch.cuda.CUDAGraph), never by Inductor's cudagraph trees.
    assert resolve_mode(mode, graph) == expected


def test_unknown_mode_is_unsupported():
    with pytest.raises(BackendUnsupported, match="unknown torch.compile mode"):
        resolve_mode("fastest", None)


def _deduplicated_model() -> onnx.ModelProto:
    # What torch's exporter writes for two equal biases: one weight, an Identity.
    bias = numpy_helper.from_array(np.zeros(4, np.float32), "b")
    nodes = [helper.make_node("Identity", ["b"], ["b_copy"]),
             helper.make_node("Add", ["x", "b"], ["y0"]),
             helper.make_node("Add", ["y0", "b_copy"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_identity_of_initializer_becomes_initializer():
    proto = inline_identity_initializers(_deduplicated_model())
    assert [n.op_type for n in proto.graph.node] == ["Add", "Add"]
    assert sorted(i.name for i in proto.graph.initializer) == ["b", "b_copy"]
    onnx.checker.check_model(proto)


def test_model_format_is_read_from_content(tmp_path):
    import zipfile

    onnx_file = tmp_path / "m.bin"
    onnx.save(_deduplicated_model(), onnx_file)
    archive = tmp_path / "m2.bin"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("archive_format", "pt2")
    assert model_format(onnx_file) == "onnx" and model_format(archive) == "pt2"


def test_shape_arguments_are_baked_into_calls(tmp_path):
    torch = pytest.importorskip("torch")
    if importlib.util.find_spec("onnx2torch") is None:  # imported through load_onnx2torch (torchvision)
        pytest.skip("needs onnx2torch")
    from workers.backends.torch.onnx_import import onnx_to_module

    shape = helper.make_node("Shape", ["x"], ["s"])
    nodes = [shape, helper.make_node("Reshape", ["x", "s"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 6])])
    path = tmp_path / "reshape.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what the ONNX Runtime in use reads
    onnx.save(model, path)
    x = torch.randn(3, 6)
    module, info = onnx_to_module(path, {"x": (3, 6)}, [x])
    assert info["specialized_to"] == {"x": [3, 6]} and info["host_reads"] == 0
    assert not any(n.op == "call_module" and "Shape" in str(n.target) for n in module.graph.nodes)
    assert torch.equal(torch.compile(module, backend="eager", fullgraph=True)(x), x)


def test_inductor_overrides_join_the_mode_options():
    pytest.importorskip("torch")
    from workers.backends.torch.backend import compile_options

    options = compile_options("max-autotune", {"max_autotune_conv_backends": "ATEN"})
    assert options["max_autotune"] is True and options["triton.cudagraphs"] is True
    assert options["max_autotune_conv_backends"] == "ATEN"
    assert "triton.cudagraphs" not in compile_options("max-autotune-no-cudagraphs", None)


def test_tuned_build_is_max_autotune_once():
    config = backend_config("torch")
    assert config.tuned_build({}) == {"mode": "max-autotune"}
    assert config.tuned_build({"mode": "default", "fullgraph": True}) == {"mode": "max-autotune", "fullgraph": True}
    assert config.tuned_build({"mode": "max-autotune"}) is None  # already the tuned build
    assert backend_config("onnxruntime").tuned_build({}) is None  # no expensive build to make


@pytest.mark.parametrize("backend", ["tensorrt", "tensorrt-rtx"])
def test_tensorrt_family_tuned_build_is_the_highest_optimization_level(backend):
    config = backend_config(backend)
    assert config.tuned_build({}) == {"builder_optimization_level": 5}
    assert config.tuned_build({"builder_optimization_level": 5}) is None
