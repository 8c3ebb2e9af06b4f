"""The static ONNX -> torch import on real pretrained models (CPU only).

For every panel model (tests/real_models.py): after the import, one eager
forward reads no tensor into Python (the count the build also checks on the
GPU), and the module computes what ONNX Runtime computes in fp32. Failures
name the ONNX node and op type.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from farm.errors import BackendUnsupported
from tests.real_models import PANEL

torch = pytest.importorskip("torch")
if importlib.util.find_spec("onnx2torch") is None:  # imported through load_onnx2torch (torchvision)
    pytest.skip("needs onnx2torch", allow_module_level=True)
pytest.importorskip("onnxscript")


def _inputs(path, shapes):
    from farm.model_info import read_model
    from workers.inputs import make_feeds

    info = read_model(path)
    feeds = make_feeds(info, shapes, seed=0)
    return feeds, [torch.from_numpy(np.ascontiguousarray(feeds[i.name])) for i in info.inputs]


@pytest.mark.parametrize("model", PANEL, ids=[m.key for m in PANEL])
def test_static_import_leaves_no_host_reads_and_matches_onnxruntime(model):
    import onnxruntime as ort

    from farm.accuracy import compare_arrays
    from workers.backends.torch.host_reads import scan
    from workers.backends.torch.onnx_import import onnx_to_module

    path = model.locate()
    if path is None:
        pytest.skip(f"needs the {model.package} wheel (test extra)")
    shapes = model.shapes(2)
    feeds, tensors = _inputs(path, shapes)
    module, info = onnx_to_module(path, shapes, tensors)  # raises if any op reads a tensor into Python
    assert info["host_reads"] == 0
    outputs, reads = scan(module, tensors, module.onnx_nodes)
    assert reads.total == 0 and reads.by_node == {}
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    reference = session.run(None, feeds)
    assert len(outputs) == len(reference)
    for got, want in zip(outputs, reference):
        # PP-OCR det is ill-conditioned on random input: ONNX Runtime's own
        # optimisation levels differ by 2.5e-3 on it.
        assert compare_arrays(got.numpy(), want)["rel_l2_error"] < 5e-3


@pytest.mark.parametrize("key", ["silero-vad", "magika"])
def test_dynamo_traces_one_graph_without_breaks(key):
    from tests.real_models import by_key
    from workers.backends.torch.onnx_import import onnx_to_module

    model = by_key(key)
    path = model.locate()
    if path is None:
        pytest.skip(f"needs the {model.package} wheel (test extra)")
    shapes = model.shapes(2)
    _feeds, tensors = _inputs(path, shapes)
    module, _info = onnx_to_module(path, shapes)
    torch._dynamo.reset()
    explained = torch._dynamo.explain(module)(*tensors)
    assert explained.graph_count == 1 and explained.graph_break_count == 0, explained.break_reasons


def _save(tmp_path, nodes, inputs, outputs, name="m.onnx", opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp_path / name
    onnx.save(model, path)
    return path


def test_a_shape_fed_at_run_time_fails_naming_the_node(tmp_path):
    from workers.backends.torch.onnx_import import onnx_to_module

    path = _save(tmp_path, [helper.make_node("Reshape", ["x", "target"], ["y"], name="reshape_by_input")],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6]),
                  helper.make_tensor_value_info("target", TensorProto.INT64, [2])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    with pytest.raises(BackendUnsupported, match=r"ONNX node 'reshape_by_input' \(Reshape\).*computed at run time"):
        onnx_to_module(path, {"x": (2, 6), "target": (2,)})


def test_an_op_without_converter_fails_naming_the_node(tmp_path):
    from workers.backends.torch.onnx_import import onnx_to_module

    path = _save(tmp_path, [helper.make_node("Hardmax", ["x"], ["y"], name="the_hardmax")],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 6])])
    with pytest.raises(BackendUnsupported, match=r"ONNX node 'the_hardmax' \(Hardmax, opset 17\)"):
        onnx_to_module(path, {"x": (2, 6)})


class _ReadsBack(torch.nn.Module):
    def forward(self, x):
        return x.reshape(x.sum().int().item() * 0 + 2, -1) + torch.tensor(x[0, :1].tolist())


def test_host_read_scan_counts_and_names_each_reading_node():
    from workers.backends.torch.host_reads import scan
    from workers.backends.torch.onnx_import import check_no_host_reads

    root = torch.nn.Module()
    root.add_module("reader", _ReadsBack())
    graph = torch.fx.Graph()
    x = graph.placeholder("x")
    graph.output(graph.call_module("reader", (graph.call_function(torch.relu, (x,)),)))
    module = torch.fx.GraphModule(root, graph)
    _out, reads = scan(module, [torch.ones(2, 3)], {"reader": ("/head/Reshape", "Reshape")})
    assert reads.total == 2 and reads.by_node == {"reader": 2}
    with pytest.raises(BackendUnsupported, match=r"2 read\(s\).*ONNX node '/head/Reshape' \(Reshape\)"):
        check_no_host_reads(module, [torch.ones(2, 3)], {"reader": ("/head/Reshape", "Reshape")})


def test_batch_norm_with_a_huge_variance_survives_fp16_and_casts_follow_the_precision(tmp_path):
    from onnx import numpy_helper

    from workers.backends.torch.onnx_import import onnx_to_module

    channels = 4
    weights = {"gamma": np.ones(channels), "beta": np.full(channels, 0.5), "mean": np.zeros(channels),
               "var": np.full(channels, 9.8e7)}  # PP-OCRv4 det: a running variance past fp16's range
    nodes = [helper.make_node("BatchNormalization", ["x", "gamma", "beta", "mean", "var"], ["bn"]),
             helper.make_node("Cast", ["ids"], ["ids_f"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["bn", "ids_f"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, 2, 2]),
                     helper.make_tensor_value_info("ids", TensorProto.INT32, [1, channels, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 2, 2])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    path = tmp_path / "bn.onnx"
    onnx.save(model, path)
    x, ids = torch.full((1, channels, 2, 2), 1e4), torch.ones(1, channels, 2, 2, dtype=torch.int32)
    module, _info = onnx_to_module(path, {"x": (1, channels, 2, 2), "ids": (1, channels, 2, 2)}, [x, ids])
    half = module.half()(x.half(), ids)
    assert half.dtype == torch.float16 and torch.isfinite(half).all()
    expected = 1e4 / np.sqrt(9.8e7 + 1e-5) + 0.5 + 1.0
    assert torch.allclose(half.float(), torch.full_like(half.float(), expected), rtol=1e-3)


class _Branches(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: fullgraph refuses it
            return x * 2
        return x


def test_a_fullgraph_failure_names_the_onnx_node_in_one_line():
    from workers.backends.torch.compile_errors import describe

    root = torch.nn.Module()
    root.add_module("Where_3", _Branches())
    graph = torch.fx.Graph()
    x = graph.placeholder("x")
    graph.output(graph.call_module("Where_3", (graph.call_function(torch.relu, (x,)),)))
    module = torch.fx.GraphModule(root, graph)
    torch._dynamo.reset()
    with pytest.raises(Exception) as failure:
        torch.compile(module, fullgraph=True, backend="eager")(torch.ones(2, 3))
    text = describe(failure.value, {"Where_3": ("/head/Where_3", "Where")})
    assert text.startswith("ONNX node '/head/Where_3' (Where): ") and "\n" not in text
    assert "TORCHDYNAMO_VERBOSE" not in text


def test_an_external_data_model_imports_as_its_one_file_twin(tmp_path):
    """The torch backend reads a model whose weights live in a side file
    (farm/model_bundle.py) as the worker's folder holds it: the graph and its
    data file side by side; the module computes what the one-file model does."""
    from tests.farm.test_model_bundle import external_model
    from tests.onnx_models import make_cnn
    from workers.backends.torch.onnx_import import onnx_to_module

    one_file = make_cnn(tmp_path / "one" / "det.onnx")
    graph = external_model(tmp_path / "ext", one_file)
    shapes = {"images": (2, 3, 32, 32)}
    feeds, tensors = _inputs(one_file, shapes)
    want, _ = onnx_to_module(one_file, shapes, tensors)
    got, info = onnx_to_module(graph, shapes, tensors)
    assert info["host_reads"] == 0
    with torch.no_grad():
        np.testing.assert_array_equal(got(*tensors).numpy(), want(*tensors).numpy())
