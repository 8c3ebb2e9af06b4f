"""TensorRT 11 / TensorRT-RTX currency, checked on what this CPU-only
machine can run for real: TensorRT-RTX builders, parsers and profiles, the
engine inspector's two JSON schemas, and the runtime's pure decisions.
(The runtime itself needs a GPU the library supports: docs/tensorrt.md.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from farm.errors import BackendUnsupported
from workers.backends.tensorrt_family import io_plan, plugins, shape_values
from workers.backends.tensorrt_family.builder import build_engine, parse_onnx
from workers.backends.tensorrt_family.capabilities import TENSORRT_RTX
from workers.backends.tensorrt_family.io_plan import EngineError, Range
from workers.backends.tensorrt_family.layer_profile import io_tensor_names, layer_details, schema_version
from workers.backends.tensorrt_family.library import logger_for

from .test_io_plan import Knobs, qdq_model, reshape_model

FIXTURES = Path(__file__).resolve().parents[3] / "data" / "inspector"


def roi_align_model(tmp_path) -> Path:
    """ONNX RoiAlign: TensorRT imports it as the ROIAlign_TRT plugin."""
    node = helper.make_node("RoiAlign", ["x", "rois", "idx"], ["y"], output_height=2, output_width=2,
                            sampling_ratio=2, spatial_scale=1.0)
    graph = helper.make_graph([node], "roi", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 16, 16]),
        helper.make_tensor_value_info("rois", TensorProto.FLOAT, [3, 4]),
        helper.make_tensor_value_info("idx", TensorProto.INT64, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "roi.onnx"
    onnx.save(model, str(path))
    return path


# ---- 64-bit shape values ------------------------------------------------------------------------

def test_the_installed_binding_carries_64_bit_shape_values(rtx):
    builder = rtx.Builder(logger_for(rtx))
    assert shape_values.values_api(rtx, builder) == "int64"
    profile = builder.create_optimization_profile()
    big = Range((2**33,), (2**33,), (2**34,), values=True)
    shape_values.set_values(profile, "n", big, "int64")
    assert shape_values.as_triple(profile.get_shape_input("n")) == ((2**33,), (2**33,), (2**34,))


def test_a_32_bit_binding_refuses_values_it_would_truncate():
    class Profile:
        calls: list = []

        def set_shape_input(self, *args):
            self.calls.append(args)

    with pytest.raises(EngineError, match="past the 32-bit shape-value API"):
        shape_values.set_values(Profile(), "n", Range((1,), (2**31,), (2**31,), values=True), "int32")
    shape_values.set_values(Profile(), "n", Range((1,), (2,), (3,), values=True), "int32")
    assert Profile.calls == [("n", [1], [2], [3])]


def test_a_shape_tensor_build_records_the_value_api(rtx, tmp_path):
    shapes = {"x": {"min": [1, 12], "opt": [2, 12], "max": [2, 12]}, "shape": {"min": [3], "opt": [3], "max": [3]}}
    built = build_engine(rtx, TENSORRT_RTX, Knobs(), reshape_model(tmp_path), shapes, "fp32",
                         shape_values={"shape": [2, 3, 4]})
    assert built.settings["shape_values_api"] == "int64"
    assert built.settings["profile_ranges"][0]["shape"]["min"] == [2, 3, 4]


# ---- plugins ------------------------------------------------------------------------------------

def test_a_plugin_node_reaches_its_creator_and_a_failure_there_is_named(rtx, tmp_path):
    logger = logger_for(rtx)
    notes = plugins.register(rtx, logger)
    assert notes["standard_plugins"] is True and "ROIAlign_TRT" in notes["creators"]
    # The parser finds ROIAlign_TRT and asks it for the plugin; its constructor queries the GPU,
    # which this machine has not got. The parser itself says only "plugin was not found": the one
    # line names what TensorRT logged first, which is the cause.
    builder = rtx.Builder(logger)
    try:
        parse_onnx(rtx, builder, roi_align_model(tmp_path), logger)
    except BackendUnsupported as refused:
        line = str(refused)
        assert "node #0 (RoiAlign)" in line and "\n" not in line
        assert "ROIAlignV3" in line.split("TensorRT logged first:")[1] and "CUDA driver" in line
    # (on a GPU host the same call returns a network with the plugin layer)


def test_a_plugin_library_that_is_not_on_the_worker_is_one_line(rtx, tmp_path):
    logger = logger_for(rtx)
    with pytest.raises(BackendUnsupported, match=r"plugin library '/nonexistent/libx.so' does not exist on this worker"):
        plugins.register(rtx, logger, ["/nonexistent/libx.so"])


# ---- builder flags ------------------------------------------------------------------------------

class RtxKnobs(Knobs):
    version_compatible: bool | None = None
    require_user_allocation: bool | None = None
    plugins = None


@pytest.mark.parametrize("user_allocation", [None, False])
def test_user_allocation_is_set_and_read_back(rtx, tmp_path, user_allocation):
    knobs = RtxKnobs()
    knobs.require_user_allocation = user_allocation
    built = build_engine(rtx, TENSORRT_RTX, knobs, qdq_model(tmp_path), {"x": {"min": [1, 16], "opt": [4, 16],
                                                                             "max": [8, 16]}}, "int8")
    assert built.settings["version_compatible"] is False
    # The farm's RTX default: engines use application memory, as stream capture requires.
    assert built.settings["require_user_allocation"] is (user_allocation is not False)
    assert built.settings["plugin_libraries"] == []


def test_version_compatible_engines_need_the_lean_runtime_tensorrt_rtx_lacks(rtx, tmp_path):
    """Why ``version_compatible`` is a knob of full TensorRT only: a version-compatible
    engine embeds the lean runtime, which TensorRT-RTX does not ship."""
    knobs = RtxKnobs()
    knobs.version_compatible = True
    with pytest.raises(BackendUnsupported, match="libnvinfer_lean"):
        build_engine(rtx, TENSORRT_RTX, knobs, qdq_model(tmp_path), {"x": {"min": [1, 16], "opt": [4, 16],
                                                                       "max": [8, 16]}}, "int8")


def test_knobs_are_checked_and_stored_in_one_spelling():
    from workers.backends.tensorrt.config import TensorRTConfig
    from workers.backends.tensorrt_rtx.config import TensorRTRTXConfig

    config = TensorRTConfig(plugins=["/opt/plugins/libcustom.so"], version_compatible=True)
    assert config.plugins == ("/opt/plugins/libcustom.so",) and config.version_compatible is True
    assert TensorRTRTXConfig(plugins=["a.so"]).plugins == ("a.so",)
    assert not hasattr(TensorRTRTXConfig(), "version_compatible")


# ---- CUDA graphs --------------------------------------------------------------------------------

def test_graph_plan_captures_only_what_can_be_captured():
    assert io_plan.graph_plan(True, [], None, runtime_graphs=False) == ("farm", None)  # trtexec 11 default
    assert io_plan.graph_plan(True, [], True, runtime_graphs=True) == ("farm", None)
    assert io_plan.graph_plan(False, [], True, runtime_graphs=True) == ("off", None)
    plan, why = io_plan.graph_plan(True, [], False, runtime_graphs=True)
    assert plan == "runtime" and "not stream capturable" in why and "WHOLE_GRAPH_CAPTURE" in why
    plan, why = io_plan.graph_plan(True, [], False, runtime_graphs=False)
    assert plan == "off" and "not stream capturable" in why
    plan, why = io_plan.graph_plan(True, ["boxes"], True, runtime_graphs=True)
    assert plan == "off" and "boxes have data-dependent shapes" in why


def test_rtx_runtime_strategies_exist_under_the_names_the_farm_sets(rtx):
    assert rtx.DynamicShapesKernelSpecializationStrategy.EAGER is not None
    assert rtx.CudaGraphStrategy.WHOLE_GRAPH_CAPTURE is not None and rtx.CudaGraphStrategy.DISABLED is not None
    for name in ("create_runtime_cache", "set_runtime_cache", "dynamic_shapes_kernel_specialization_strategy",
                 "cuda_graph_strategy"):
        assert hasattr(rtx.IRuntimeConfig, name), name
    assert hasattr(rtx.IExecutionContext, "is_stream_capturable")
    assert hasattr(rtx.ICudaEngine, "create_runtime_config")


# ---- engine inspector: TensorRT 10 and 11 schemas -----------------------------------------------

def test_inspector_schemas_of_10_and_11_give_the_same_columns():
    ten = json.loads((FIXTURES / "trt10_detailed.json").read_text())
    eleven = json.loads((FIXTURES / "trt11_detailed.json").read_text())
    assert schema_version(ten) == "10" and schema_version(eleven) == "11"
    assert io_tensor_names(ten) == ["gpu_0/res3_3_branch2c_bn_3", "gpu_0/res4_0_branch2a_bn_2"]
    assert io_tensor_names(eleven) == ["input_0", "output_0"]
    details10 = layer_details({"layers": ten["Layers"]})
    details11 = layer_details({"layers": eleven["Layers"]})
    conv10 = details10[ten["Layers"][0]["Name"]]
    assert conv10 == {"type": "CaskConvolution", "tactic": "0x0000000000000c49",
                      "precision": "Thirty-two wide channel vectorized row major Int8 format."}
    conv11 = details11["conv1 + relu1"]
    assert conv11["type"] == "CaskConvolution" and conv11["tactic"].startswith("sm90_xmma")
    assert conv11["precision"] == "Half / Channel major FP16 format where channel % 8 == 0"
    # Every layer of either schema has a precision: none goes empty silently.
    assert all("precision" in d for d in [*details10.values(), *details11.values()])
    assert np.all([isinstance(d["precision"], str) for d in details11.values()])
