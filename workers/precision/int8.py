"""Post-training static quantization (int8, and fp8 E4M3) with ONNX
Runtime's tools, by a recipe per consuming backend (workers/precision/recipes.py).

Q/DQ format (QuantizeLinear/DequantizeLinear pairs) is what both ONNX
Runtime and TensorRT's explicit quantization consume. Calibration reads
the calibration rows of the user's data (disjoint from the evaluation rows,
farm/input_data.py split_rows), else synthetic inputs with their own seeds
(and the accuracy of such a model is then ``unchecked``, farm/accuracy.py).
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


from workers.precision.recipes import TENSORRT_OPTIONS, Recipe, quantized_node_counts, recipe  # noqa: F401

# Where the quantized model records what was done instead of what was asked
# (ONNX metadata_props), so a cached prepared model still says it.
FALLBACKS_KEY = "engine_farm.fallbacks"


class NothingQuantized(Exception):
    """The quantizer inserted no quantized op: the result is the fp32 model,
    and labelling it int8 would rank a copy of fp32 as an int8 engine."""


def quantize_int8(model_path: Path, out_path: Path, calibration_feeds, per_channel: bool = True,
                  tensorrt: bool = False, method: str = "minmax", how: Recipe | None = None) -> Path:
    """Quantize with per-channel weights where the graph allows it; some
    graphs (Conv+BatchNorm fused by pre-processing) give per-channel
    Q/DQ nodes ONNX Runtime rejects, and then per-tensor weights are used
    (recorded as the ``per_tensor_fallback`` fallback, see model_fallbacks).
    ``how``: the recipe (workers/precision/recipes.py); ``tensorrt`` without
    one: TensorRT's Q/DQ recipe, else ONNX Runtime's own. Raises
    NothingQuantized when no quantized op was inserted."""
    how = how or recipe("tensorrt" if tensorrt else "onnxruntime")
    fallbacks: dict[str, str] = {}
    _quantize_with_fallback(model_path, out_path, list(calibration_feeds), "int8", per_channel, how, method,
                            fallbacks)
    _check_inserted(model_path, out_path)
    return _record_fallbacks(out_path, fallbacks)


def quantize_fp8(model_path: Path, out_path: Path, calibration_feeds, per_channel: bool = True) -> Path:
    """FP8 (E4M3FN) Q/DQ for TensorRT (ONNX Runtime's CPU provider has no
    fp8 kernels; the engine builder is the consumer)."""
    fallbacks: dict[str, str] = {}
    _quantize_with_fallback(model_path, out_path, list(calibration_feeds), "fp8", per_channel,
                            recipe("tensorrt", kind="fp8"), "distribution", fallbacks)
    _check_inserted(model_path, out_path)
    return _record_fallbacks(_fix_zero_scales(out_path), fallbacks)


def _check_inserted(source: Path, quantized: Path) -> None:
    before, after = quantized_node_counts(source), quantized_node_counts(quantized)
    if sum(after.values()) <= sum(before.values()):
        raise NothingQuantized("quantization inserted no quantized op (no Q/DQ pair, no integer kernel): the model "
                               "has nothing the recipe quantizes, so an 'int8' build would be the fp32 model")


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
                            how: Recipe, method: str, fallbacks: dict[str, str]) -> Path:
    check_loads = kind == "int8"  # ONNX Runtime's CPU provider has no fp8 kernels
    if per_channel:
        try:
            _quantize(model_path, out_path, feeds, True, how, method, fallbacks)
            if check_loads:
                _check_loads(out_path)
            return out_path
        except Exception as exc:
            out_path.unlink(missing_ok=True)
            fallbacks["per_tensor_fallback"] = ("per-channel weights were asked for; quantizing per channel "
                                                f"failed ({_first_line(exc)}), so weights are per tensor")
    _quantize(model_path, out_path, feeds, False, how, method, fallbacks)
    if check_loads:
        _check_loads(out_path)
    return out_path


def _check_loads(path: Path) -> None:
    import onnxruntime as ort

    ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile", "distribution": "Distribution"}
_TYPES = {"int8": "QInt8", "uint8": "QUInt8", "float8e4m3fn": "QFLOAT8E4M3FN"}


def _quantize(model_path: Path, out_path: Path, feeds, per_channel: bool, how: Recipe, method: str,
              fallbacks: dict[str, str] | None = None) -> None:
    fallbacks = {} if fallbacks is None else fallbacks
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    options = dict(how.options)
    if method == "minmax" and len(feeds) > 16:
        # Reduce the intermediate outputs every few batches: hundreds of calibration rows of a
        # detector's activations would not fit in memory at once. (ONNX Runtime 1.2x raises "No
        # data is collected" when the batch count is a multiple of this: pick one that is not.)
        options.setdefault("CalibMaxIntermediateOutputs", next(m for m in range(8, 17) if len(feeds) % m))
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
    cache = _entropy_ranges(source, feeds, how, out_path) if method == "entropy" else None
    quantize_static(
        str(source),
        str(out_path),
        None if cache else _FeedsReader(feeds),
        quant_format=QuantFormat.QDQ if how.quant_format == "qdq" else QuantFormat.QOperator,
        activation_type=getattr(QuantType, _TYPES[how.activation_type]),
        weight_type=getattr(QuantType, _TYPES[how.weight_type]),
        per_channel=per_channel,
        calibrate_method=getattr(CalibrationMethod, _METHODS[method]),
        op_types_to_quantize=list(how.ops) if how.ops else None,
        extra_options=options,
        **({"calibration_cache_path": str(cache)} if cache else {}),
    )
    prepared.unlink(missing_ok=True)
    converted.unlink(missing_ok=True)
    if cache:
        cache.unlink(missing_ok=True)


# TensorRT's EntropyCalibrator2 rule (KL over 128 quantized bins) on a 512-bin histogram: TensorRT uses
# 2048 bins, but ONNX Runtime's search is pure Python (2048 bins took >10 min on PP-OCR det's 329
# tensors); 512 gives 193 candidate thresholds per tensor.
ENTROPY_BINS, ENTROPY_QUANTIZED_BINS = 512, 128


def _entropy_ranges(source: Path, feeds, how: Recipe, out_path: Path) -> Path:
    """Entropy (KL) calibration ranges with TensorRT's histogram: ONNX
    Runtime's quantize_static passes its entropy calibrator no bin count, and
    at its default of 128 bins and 128 quantized bins the search has a single
    candidate, the full range, so "entropy" gave exactly min-max's scales
    (measured: identical on PP-OCR cls, det and rec). The ranges are computed
    here with ENTROPY_BINS bins and handed to quantize_static as its calibration cache."""
    import tempfile

    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator, save_tensors_data

    cache = out_path.with_suffix(".entropy.json")
    with tempfile.TemporaryDirectory(prefix="farm.entropy.") as tmp:
        calibrator = create_calibrator(Path(source), list(how.ops) if how.ops else None,
                                       augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                       calibrate_method=CalibrationMethod.Entropy,
                                       extra_options={"num_bins": ENTROPY_BINS,
                                                      "num_quantized_bins": ENTROPY_QUANTIZED_BINS,
                                                      "symmetric": bool(how.options.get("ActivationSymmetric"))})
        calibrator.collect_data(_FeedsReader(feeds))
        save_tensors_data(calibrator.compute_data(), cache)
    return cache


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
