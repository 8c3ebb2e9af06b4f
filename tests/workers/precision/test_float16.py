"""fp16/bf16 conversion of real models: fp32 I/O, sensitive ops in fp32,
and (fp16, which ONNX Runtime's CPU provider runs) outputs close to fp32."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto

from farm.accuracy import compare_arrays
from workers.precision.float16 import convert_float


def _run(path, x):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _types(model) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    values = (*inferred.graph.input, *inferred.graph.output, *inferred.graph.value_info)
    types = {v.name: v.type.tensor_type.elem_type for v in values}
    types.update({i.name: i.data_type for i in inferred.graph.initializer})
    return types


def test_fp16_recogniser_keeps_io_and_sensitive_ops_fp32_and_matches(tmp_path, rec_model):
    out = convert_float(rec_model, tmp_path / "rec.fp16.onnx", "fp16")
    model = onnx.load(str(out))
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    types = _types(model)
    low = [n for n in model.graph.node if n.op_type == "Conv" and types.get(n.output[0]) == TensorProto.FLOAT16]
    assert low, "convolutions run in fp16"
    for node in model.graph.node:
        if node.op_type in ("Softmax", "ReduceMean", "Pow", "Sqrt", "BatchNormalization"):
            assert types[node.input[0]] == TensorProto.FLOAT, node.name
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 48, 96)).astype(np.float32)
    metrics = compare_arrays(_run(out, x), _run(rec_model, x))
    assert metrics["cosine"] > 0.999 and metrics["rel_l2_error"] < 1e-2


def test_bf16_detector_with_ops_kept_fp32(tmp_path, det_model):
    out = convert_float(det_model, tmp_path / "det.bf16.onnx", "bf16", keep_fp32=("ConvTranspose",))
    model = onnx.load(str(out))
    # PP-OCR's exporter stores weights as Constant nodes.
    stored = [*model.graph.initializer, *(a.t for n in model.graph.node if n.op_type == "Constant"
                                          for a in n.attribute if a.name == "value")]
    assert sum(t.data_type == TensorProto.BFLOAT16 for t in stored) > 50, "weights are stored as bf16"
    casts = [n for n in model.graph.node if n.op_type == "Cast"]
    deconv_inputs = {n.input[0] for n in model.graph.node if n.op_type == "ConvTranspose"}
    # Every ConvTranspose reads an fp32 tensor: a Cast back from bf16 feeds it.
    assert deconv_inputs <= {c.output[0] for c in casts if c.attribute[0].i == TensorProto.FLOAT}
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
