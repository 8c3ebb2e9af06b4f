"""Real TensorRT-RTX builds on this machine (no GPU needed to build):
engine, metadata and the reason measurement is impossible here."""

from __future__ import annotations

import json

import onnx
import pytest
from onnx import TensorProto, helper

from farm.errors import BackendUnsupported, SpecError
from farm.model_info import read_model
from farm.spec import MeasureConfig
from farm.store import open_store
from workers.backends import load_backend
from workers.backends.base import DeviceContext, JobContext

CPU = DeviceContext(kind="cpu", name="test CPU", device_class="cpu.x86_64.test")
H100 = DeviceContext(kind="gpu", name="NVIDIA H100 80GB HBM3", device_class="gpu.nvidia-h100-80gb-hbm3",
                     index=0, compute_capability="9.0")
DET_SHAPES = {"x": {"min": [1, 3, 32, 32], "opt": [1, 3, 64, 64], "max": [2, 3, 96, 96]}}


def job(tmp_path, model, precision, shapes=DET_SHAPES, device=CPU) -> JobContext:
    workdir = tmp_path / f"work-{precision}"
    workdir.mkdir(exist_ok=True)
    return JobContext(job_id="test", precision=precision, batch_size=1, shapes=shapes, model_path=model,
                      model=read_model(model), measure=MeasureConfig(), calibration={"samples": 2, "seed": 0},
                      device=device, workdir=workdir, store=open_store())


@pytest.mark.slow
def test_fp16_build_records_engine_metadata_and_cpu_reason(rtx, farm_home, tmp_path, det_model):
    backend = load_backend("tensorrt-rtx", {"builder_optimization_level": 2, "compute_capabilities": ["8.6", "12.0"]})
    ctx = job(tmp_path, det_model, "fp16")
    built = backend.build(ctx)
    assert built.artifact.stat().st_size > 100_000
    metadata = json.loads(built.extra_artifacts["engine-metadata"].read_text())
    assert metadata["library"] == "tensorrt-rtx" and metadata["library_version"] == rtx.__version__
    assert metadata["runs_on"]["compute_capabilities"] == ["8.6", "12.0"]
    assert metadata["build_settings"]["builder_optimization_level"] == 2
    assert metadata["inputs"] == [{"name": "x", "dtype": "float", "shape": [-1, 3, -1, -1]}]
    assert metadata["profiles"] == [DET_SHAPES]
    assert metadata["engine_bytes"] == built.artifact.stat().st_size
    # The inspector needs a deserialized engine; the reason it has none is kept.
    assert metadata["layers"]["available"] is False and metadata["layers"]["reason"]
    assert built.info["runs_on"] == metadata["runs_on"] and built.info["runs_on"]["gpu_only"] is True
    # The fp16 model is a stored artifact of its own, with fp32 I/O.
    fp16 = onnx.load(str(built.extra_artifacts["onnx-fp16"]))
    assert fp16.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    with pytest.raises(BackendUnsupported, match="run only on a GPU .*built and stored"):
        backend.load(built.artifact, ctx)


@pytest.mark.slow
def test_int8_build_of_the_transformer_recogniser(rtx, farm_home, tmp_path, rec_model):
    shapes = {"x": {"min": [1, 3, 48, 64], "opt": [1, 3, 48, 96], "max": [1, 3, 48, 160]}}
    built = load_backend("tensorrt-rtx").build(job(tmp_path, rec_model, "int8", shapes))
    ops = {n.op_type for n in onnx.load(str(built.extra_artifacts["onnx-int8"])).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert built.info["precision_model"]["calibration"]["shapes"] == {"x": [1, 3, 48, 96]}
    assert built.info["runs_on"]["compute_capabilities"] == ["8.0", "8.6", "8.9", "12.0", "12.1"]


def test_a_gpu_the_runtime_refuses_is_unsupported_with_its_words(rtx, tmp_path, det_model):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not an engine")
    with pytest.raises(BackendUnsupported) as error:
        load_backend("tensorrt-rtx").load(engine, job(tmp_path, det_model, "fp32", device=H100))
    message = str(error.value)
    assert message.startswith("the tensorrt-rtx runtime cannot load the engine on NVIDIA H100 80GB HBM3 "
                              "(compute capability 9.0; the tensorrt-rtx runtime runs on 8.0, 8.6, 8.9, 12.0, 12.1): ")
    assert "Error Code" in message  # TensorRT-RTX's own message follows


def test_parser_errors_name_the_node(rtx, farm_home, tmp_path):
    # A custom-domain op no parser knows: the error must say which node.
    node = helper.make_node("Frobnicate", ["x"], ["y"], domain="example.custom", name="frob_1")
    graph = helper.make_graph([node], "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("example.custom", 1)])
    path = tmp_path / "bad.onnx"
    onnx.save(model, str(path))
    shapes = {"x": {"min": [1, 4], "opt": [1, 4], "max": [1, 4]}}
    with pytest.raises(BackendUnsupported, match=r"ONNX parser rejected the model: node frob_1 \(Frobnicate\)"):
        load_backend("tensorrt-rtx").build(job(tmp_path, path, "fp32", shapes))


@pytest.mark.parametrize("knobs, message", [
    ({"compute_capabilities": ["9.0"]}, "compute_capabilities[0]': '9.0' is not allowed (allowed: 7.5, 8.0"),
    ({"compute_capabilities": "8.6"}, "give a non-empty list"),
    ({"builder_optimization_level": 7}, "builder_optimization_level': 7 is not allowed (allowed: 0..5)"),
    ({"timing_cache": True}, "unknown knob 'timing_cache' for backend tensorrt-rtx"),
])
def test_rtx_knobs_are_checked_at_submit(knobs, message):
    from farm.backends import backend_config

    with pytest.raises(SpecError) as error:
        backend_config("tensorrt-rtx").from_dict(knobs)
    assert message in str(error.value)


def test_rtx_defaults_and_fp8_targets():
    from farm.backends import backend_config

    config = backend_config("tensorrt-rtx").from_dict({"compute_capabilities": [8.6, "12.0"]})
    assert config.targets() == ("8.6", "12.0")
    default = backend_config("tensorrt-rtx").from_dict({})
    assert default.targets("fp16") == ("8.0", "8.6", "8.9", "12.0", "12.1")
    assert default.targets("fp8") == ("8.9", "12.0", "12.1")  # Ampere has no fp8 kernels
    assert type(default).device_kinds == ("gpu", "cpu") and type(default).build_anywhere


def test_axes_sharing_a_name_sized_apart_are_explained(rtx, farm_home, tmp_path):
    """TensorRT ties axes of one dim_param together; its own error names neither."""
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "side", "side"])]
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, "side", "side"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "square.onnx"
    onnx.save(model, path)
    shapes = {"x": {"min": [1, 3, 48, 96], "opt": [1, 3, 48, 192], "max": [1, 3, 48, 192]}}
    with pytest.raises(BackendUnsupported) as refused:
        load_backend("tensorrt-rtx").build(job(tmp_path, path, "fp32", shapes))
    assert str(refused.value) == (
        "tensorrt-rtx could not build the engine: the model names axes x[2], x[3] all 'side', so TensorRT needs "
        "them equal, but the profile gives x[2] 48/48/48, x[3] 96/192/192 (min/opt/max)")
    square = {"x": {"min": [1, 3, 48, 48], "opt": [1, 3, 96, 96], "max": [1, 3, 192, 192]}}
    assert load_backend("tensorrt-rtx").build(job(tmp_path, path, "fp32", square)).artifact.stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_an_external_data_model_builds(rtx, farm_home, tmp_path, precision):
    """TensorRT's parser reads the weights from the data file beside the graph
    (farm/model_bundle.py: the worker's folder holds both); the fp16 copy of
    the model is made from them too."""
    from tests.farm.test_model_bundle import external_model
    from tests.onnx_models import make_cnn

    graph = external_model(tmp_path / "ext", make_cnn(tmp_path / "one" / "det.onnx"))
    assert read_model(graph).data_files
    shapes = {"images": {"min": [1, 3, 32, 32], "opt": [1, 3, 32, 32], "max": [1, 3, 32, 32]}}
    built = load_backend("tensorrt-rtx", {"builder_optimization_level": 0}).build(job(tmp_path, graph, precision,
                                                                                          shapes))
    assert built.artifact.stat().st_size > 10_000
