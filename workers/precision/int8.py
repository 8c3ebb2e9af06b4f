"""Post-training static int8 quantization with ONNX Runtime's tools.

Q/DQ format (QuantizeLinear/DequantizeLinear pairs) is what both ONNX
Runtime and TensorRT's explicit quantization consume. Calibration uses
synthetic inputs drawn like the measurement inputs but with other seeds.
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


def quantize_int8(model_path: Path, out_path: Path, calibration_feeds, per_channel: bool = True) -> Path:
    """Quantize with per-channel weights where the graph allows it; some
    graphs (Conv+BatchNorm fused by pre-processing) give per-channel
    Q/DQ nodes ONNX Runtime rejects, and then per-tensor weights are used."""
    feeds = list(calibration_feeds)
    if per_channel:
        try:
            _quantize(model_path, out_path, feeds, per_channel=True)
            _check_loads(out_path)
            return out_path
        except Exception:
            out_path.unlink(missing_ok=True)
    _quantize(model_path, out_path, feeds, per_channel=False)
    _check_loads(out_path)
    return out_path


def _check_loads(path: Path) -> None:
    import onnxruntime as ort

    ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _quantize(model_path: Path, out_path: Path, feeds, per_channel: bool) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model_path = _with_min_opset(model_path, out_path.with_suffix(".opset.onnx"))
    prepared = out_path.with_suffix(".pre.onnx")
    try:
        quant_pre_process(str(model_path), str(prepared), skip_symbolic_shape=True)
        source = prepared
    except Exception:
        # Pre-processing (shape inference + folding) is an optimisation; some
        # models defeat it, and quantization still works without it.
        source = model_path
    quantize_static(
        str(source),
        str(out_path),
        _FeedsReader(feeds),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        calibrate_method=CalibrationMethod.MinMax,
    )
    prepared.unlink(missing_ok=True)


MIN_QDQ_OPSET = 13  # per-channel DequantizeLinear (its ``axis``) needs opset 13


def _with_min_opset(model_path: Path, converted: Path) -> Path:
    """Models exported at opset < 13 get converted up; quantize_static keeps
    the opset and would emit per-channel Q/DQ nodes that opset cannot hold."""
    import onnx
    from onnx import version_converter

    model = onnx.load(str(model_path))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), MIN_QDQ_OPSET)
    if opset >= MIN_QDQ_OPSET:
        return model_path
    try:
        onnx.save(version_converter.convert_version(model, MIN_QDQ_OPSET), str(converted))
    except Exception:
        return model_path  # per-tensor quantization still works at the old opset
    return converted
