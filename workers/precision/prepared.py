"""The model a strongly typed builder consumes for a precision, made once
and reused across batch sizes, profiles' batch ranges and devices.

Key: (source model sha256, precision, transform options, calibration
settings, calibration shapes, user data). Calibration runs at batch 1 with
the profile's opt shape for the other axes, so the batch size of a job
does not change the key. The result is published in the artifact store
(kind ``onnx-<precision>``) and looked up there by key by every worker.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from farm.errors import BackendUnsupported
from workers import artifact_index
from workers.backends.base import JobContext

# Bump when a transform's output changes. 2: models have exporter quirks
# removed first (workers/onnx_quirks.py). 3: quantized models record their
# fallbacks (workers/precision/int8.py FALLBACKS_KEY). 4: calibration on the submit-time
# calibration rows, calibration method in the key (issue 22).
TRANSFORM_VERSION = 4
FLOAT_PRECISIONS = ("fp16", "bf16")
QDQ_PRECISIONS = ("int8", "fp8")


@dataclass
class PreparedModel:
    path: Path
    info: dict = field(default_factory=dict)
    kind: str | None = None  # artifact kind, None for the unchanged fp32 model


def calibration_shapes(ctx: JobContext) -> dict[str, tuple[int, ...]]:
    """The opt shapes at batch 1 where the model's batch axis is dynamic."""
    shapes = {}
    for name, shape in ctx.run_shapes.items():
        info = ctx.model.input(name)
        # Unknown rank (the model declares no shape): the profile's axis 0 is the batch.
        batched = info is not None and len(shape) > 0 and not info.is_fixed(0)
        shapes[name] = (1, *shape[1:]) if batched else tuple(shape)
    return shapes


def _data_digest(ctx: JobContext) -> str | None:
    data = getattr(ctx, "data", None)
    if data is None:
        return None
    digest = hashlib.sha256()
    for name in sorted(data):
        digest.update(name.encode())
        digest.update(data[name].tobytes())
    return digest.hexdigest()


def describe(ctx: JobContext, precision: str, options: dict) -> dict:
    parts: dict = {"model_sha256": ctx.model.sha256, "precision": precision, "options": options,
                   "transform_version": TRANSFORM_VERSION}
    if precision in QDQ_PRECISIONS:
        calibration: dict = {"samples": int(ctx.calibration.get("samples", 8)),
                             "seed": int(ctx.calibration.get("seed", 0)),
                             "shapes": {k: list(v) for k, v in calibration_shapes(ctx).items()},
                             "data_sha256": _data_digest(ctx)}
        rows = (getattr(ctx, "rows", None) or {}).get("calibration")
        if rows is not None:
            calibration["rows"] = list(rows)
        if precision == "int8":
            calibration["method"] = str(ctx.calibration.get("method", "minmax"))
            parts["recipe"] = "tensorrt"
        parts["calibration"] = calibration
    return parts


def prepare(ctx: JobContext, precision: str, options: dict | None = None) -> PreparedModel:
    """The model for ``precision`` (fp32: the source model itself)."""
    options = dict(options or {})
    if precision in ("fp32", "model"):  # model: the model's own types (a Q/DQ model built strongly typed)
        return PreparedModel(ctx.model_path, {"precision": precision, "transform": "none"})
    if precision not in FLOAT_PRECISIONS + QDQ_PRECISIONS:
        raise BackendUnsupported(f"no model transform for precision {precision}")
    kind = f"onnx-{precision}"
    parts = describe(ctx, precision, options)
    key = artifact_index.index_key(parts)
    start = time.perf_counter()
    cached = artifact_index.fetch(ctx.store, kind, key, ".onnx")
    reused = cached is not None
    if cached is None:
        made = _transform(ctx, precision, options, ctx.workdir / f"model.{precision}.onnx")
        cached = artifact_index.write_local(kind, key, ".onnx", made.read_bytes())
        artifact_index.publish(ctx.store, kind, key, cached, {"source_model": ctx.model.sha256, **parts},
                               "application/onnx")
    info = {**parts, "key": key, "reused": reused, "seconds": round(time.perf_counter() - start, 3)}
    if precision in QDQ_PRECISIONS:
        from workers.precision.int8 import model_fallbacks

        info["fallbacks"] = model_fallbacks(cached)  # recorded in the model, so a cached one still says it
        # What was done: "options" keeps what was asked for.
        info["per_channel"] = options.get("per_channel", True) is not False and \
            "per_tensor_fallback" not in info["fallbacks"]
    return PreparedModel(cached, info, kind)


def _transform(ctx: JobContext, precision: str, options: dict, out: Path) -> Path:
    if precision in FLOAT_PRECISIONS:
        from workers.precision.float16 import convert_float

        return convert_float(ctx.model_path, out, precision, keep_fp32=tuple(options.get("keep_fp32", ())))
    from workers.inputs import calibration_batches
    from workers.precision.int8 import quantize_fp8, quantize_int8

    from workers.precision.int8 import NothingQuantized

    rows = (getattr(ctx, "rows", None) or {}).get("calibration")
    feeds = list(calibration_batches(ctx.model, calibration_shapes(ctx), int(ctx.calibration.get("samples", 8)),
                                     int(ctx.calibration.get("seed", 0)), data=getattr(ctx, "data", None),
                                     rows=rows))
    per_channel = options.get("per_channel", True)
    try:
        if precision == "int8":
            # TensorRT's explicit Q/DQ recipe (workers/precision/recipes.py)
            return quantize_int8(ctx.model_path, out, feeds, per_channel=per_channel, tensorrt=True,
                                 method=str(ctx.calibration.get("method", "minmax")))
        return quantize_fp8(ctx.model_path, out, feeds, per_channel=per_channel)
    except NothingQuantized as exc:
        raise BackendUnsupported(str(exc)) from None
