"""Post-training static quantization (int8, and fp8 E4M3) with ONNX
Runtime's tools.

Q/DQ format (QuantizeLinear/DequantizeLinear pairs) is what both ONNX
Runtime and TensorRT's explicit quantization consume. Calibration uses
synthetic inputs drawn like the measurement inputs but with other seeds.
fp8 scales come from the activations' spread (ONNX Runtime's float8 path
needs the Distribution calibrator; MinMax gives it no standard deviation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np


class _FeedsReader:
    """ONNX Runtime CalibrationDataReader over a list of feeds."""

    def __init__(self, feeds: Iterable[dict[str, np.ndarray]]):
        self._feeds = iter(list(feeds))

    def get_next(self):
        return next(self._feeds, None)

    def rewind(self):  # pragma: no cover - not used by MinMax calibration
        pass


# TensorRT's explicit quantization takes symmetric Q/DQ only (zero point 0)
# and no int32 bias DequantizeLinear: it quantizes biases itself.
TENSORRT_OPTIONS = {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False}


# Where the quantized model records what was done instead of what was asked
# (ONNX metadata_props), so a cached prepared model still says it.
FALLBACKS_KEY = "engine_farm.fallbacks"


def quantize_int8(model_path: Path, out_path: Path, calibration_feeds, per_channel: bool = True,
                  tensorrt: bool = False) -> Path:
    """Quantize with per-channel weights where the graph allows it; some
    graphs (Conv+BatchNorm fused by pre-processing) give per-channel
    Q/DQ nodes ONNX Runtime rejects, and then per-tensor weights are used
    (recorded as the ``per_tensor_fallback`` fallback, see model_fallbacks).
    ``tensorrt``: Q/DQ in the form TensorRT's parser accepts."""
    options = TENSORRT_OPTIONS if tensorrt else {}
    fallbacks: dict[str, str] = {}
    _quantize_with_fallback(model_path, out_path, list(calibration_feeds), "int8", per_channel, options, fallbacks)
    return _record_fallbacks(out_path, fallbacks)


def quantize_fp8(model_path: Path, out_path: Path, calibration_feeds, per_channel: bool = True) -> Path:
    """FP8 (E4M3FN) Q/DQ for TensorRT (ONNX Runtime's CPU provider has no
    fp8 kernels; the engine builder is the consumer)."""
    fallbacks: dict[str, str] = {}
    _quantize_with_fallback(model_path, out_path, list(calibration_feeds), "fp8", per_channel, TENSORRT_OPTIONS,
                            fallbacks)
    return _record_fallbacks(_fix_zero_scales(out_path), fallbacks)


def _record_fallbacks(path: Path, fallbacks: dict[str, str]) -> Path:
    import json

    import onnx

    model = onnx.load(str(path))
    for prop in [p for p in model.metadata_props if p.key == FALLBACKS_KEY]:
        model.metadata_props.remove(prop)
    model.metadata_props.add(key=FALLBACKS_KEY, value=json.dumps(fallbacks, sort_keys=True))
    onnx.save(model, str(path))
    return path


def model_fallbacks(path: Path) -> dict[str, str]:
    """flag -> what was done instead, as the quantizer recorded it in the model."""
    import json

    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == FALLBACKS_KEY:
            return json.loads(prop.value)
    return {}


def _fix_zero_scales(path: Path) -> Path:
    """fp8 weight scales come from each channel's spread, so an all-zero
    channel gets scale 0 (and NaN codes), which TensorRT rejects ("Scale
    coefficients must all be positive"). Such a channel is exactly zero:
    scale 1 with zero codes represents it."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {init.name: init for init in model.graph.initializer}
    changed = False
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in inits or node.input[1] not in inits:
            continue
        scale = numpy_helper.to_array(inits[node.input[1]])
        bad = ~(np.isfinite(scale) & (scale > 0))
        if not bad.any():
            continue
        codes = numpy_helper.to_array(inits[node.input[0]]).copy()
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1) if scale.ndim else None
        if axis is None:
            codes[...] = 0
        else:
            codes[(slice(None),) * axis + (bad,)] = 0
        inits[node.input[0]].CopyFrom(numpy_helper.from_array(codes, node.input[0]))
        inits[node.input[1]].CopyFrom(numpy_helper.from_array(np.where(bad, 1, scale).astype(scale.dtype),
                                                              node.input[1]))
        changed = True
    if changed:
        onnx.save(model, str(path))
    return path


def _quantize_with_fallback(model_path: Path, out_path: Path, feeds: list, kind: str, per_channel: bool,
                            options: dict, fallbacks: dict[str, str]) -> Path:
    check_loads = kind == "int8"  # ONNX Runtime's CPU provider has no fp8 kernels
    if per_channel:
        try:
            _quantize(model_path, out_path, feeds, per_channel=True, kind=kind, options=options, fallbacks=fallbacks)
            if check_loads:
                _check_loads(out_path)
            return out_path
        except Exception as exc:
            out_path.unlink(missing_ok=True)
            fallbacks["per_tensor_fallback"] = ("per-channel weights were asked for; quantizing per channel "
                                                f"failed ({_first_line(exc)}), so weights are per tensor")
    _quantize(model_path, out_path, feeds, per_channel=False, kind=kind, options=options, fallbacks=fallbacks)
    if check_loads:
        _check_loads(out_path)
    return out_path


def _check_loads(path: Path) -> None:
    import onnxruntime as ort

    ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _quantize(model_path: Path, out_path: Path, feeds, per_channel: bool, kind: str = "int8",
              options: dict | None = None, fallbacks: dict[str, str] | None = None) -> None:
    fallbacks = {} if fallbacks is None else fallbacks
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    qtype = QuantType.QFLOAT8E4M3FN if kind == "fp8" else QuantType.QInt8
    method = CalibrationMethod.Distribution if kind == "fp8" else CalibrationMethod.MinMax
    converted = out_path.with_suffix(".opset.onnx")
    model_path = _with_min_opset(model_path, converted, fallbacks)
    prepared = out_path.with_suffix(".pre.onnx")
    try:
        quant_pre_process(str(model_path), str(prepared), skip_symbolic_shape=True)
        source = prepared
        fallbacks.pop("preprocess_skipped", None)
    except Exception as exc:
        # Pre-processing (shape inference + folding) is an optimisation; some
        # models defeat it, and quantization still works without it.
        source = model_path
        fallbacks["preprocess_skipped"] = f"quantization pre-processing failed ({_first_line(exc)}); quantized as is"
    quantize_static(
        str(source),
        str(out_path),
        _FeedsReader(feeds),
        quant_format=QuantFormat.QDQ,
        activation_type=qtype,
        weight_type=qtype,
        per_channel=per_channel,
        calibrate_method=method,
        op_types_to_quantize=list(QUANTIZED_OPS),
        extra_options=dict(options or {}),
    )
    prepared.unlink(missing_ok=True)
    converted.unlink(missing_ok=True)


# Q/DQ only at the inputs of the compute-heavy ops, as TensorRT's explicit
# quantization recipes do: quantizing every elementwise op adds error (on
# PP-OCR's detector, rel. L2 0.77 vs 0.76) and Q/DQ overhead for no speed.
QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")
MIN_QDQ_OPSET = 13  # per-channel DequantizeLinear (its ``axis``) needs opset 13


def _with_min_opset(model_path: Path, converted: Path, fallbacks: dict[str, str] | None = None) -> Path:
    """Models exported at opset < 13 get converted up; quantize_static keeps
    the opset and would emit per-channel Q/DQ nodes that opset cannot hold."""
    fallbacks = {} if fallbacks is None else fallbacks
    import onnx
    from onnx import version_converter

    model = onnx.load(str(model_path))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), MIN_QDQ_OPSET)
    if opset >= MIN_QDQ_OPSET:
        return model_path
    try:
        onnx.save(version_converter.convert_version(model, MIN_QDQ_OPSET), str(converted))
    except Exception as exc:
        fallbacks["opset_not_upgraded"] = (f"upgrading opset {opset} to {MIN_QDQ_OPSET} failed "
                                           f"({_first_line(exc)}); quantized at opset {opset}")
        return model_path  # per-tensor quantization still works at the old opset
    return converted
