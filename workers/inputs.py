"""Deterministic synthetic inputs for measurement, accuracy and calibration.

Floats are drawn from a standard normal scaled to [-1, 1]-ish ranges;
integer inputs (token ids, indices) from a small non-negative range so they
are valid for embedding tables; bools at random.
"""

from __future__ import annotations

import numpy as np

from farm.model_info import ModelInfo

INT_HIGH = 100  # exclusive upper bound for integer inputs (safe for vocabularies)


def make_feeds(model: ModelInfo, shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for info in model.inputs:
        shape = tuple(shapes[info.name])
        dtype = info.dtype
        if dtype == "bool":
            feeds[info.name] = rng.integers(0, 2, size=shape).astype(bool)
        elif dtype.startswith(("int", "uint")):
            feeds[info.name] = rng.integers(0, INT_HIGH, size=shape).astype(dtype)
        elif dtype in ("float16", "float32", "float64"):
            feeds[info.name] = rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
        else:
            # bfloat16 and exotic types have no numpy dtype; feed float32 and
            # let the backend cast (ONNX Runtime rejects it with a clear error).
            feeds[info.name] = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
    return feeds


def calibration_batches(model: ModelInfo, shapes: dict[str, tuple[int, ...]], samples: int, seed: int,
                        data: dict[str, np.ndarray] | None = None):
    """``samples`` feeds for calibration: from the user's data (batches
    taken after the first one, which is the measurement/accuracy batch) or
    synthetic with seeds distinct from the measurement seed."""
    for index in range(samples):
        if data is not None:
            yield feeds_from_data(model, data, shapes, offset=(index + 1) * _batch(shapes))
        else:
            yield make_feeds(model, shapes, seed=seed + 1000 + index)


def _batch(shapes: dict[str, tuple[int, ...]]) -> int:
    return next((s[0] for s in shapes.values() if len(s)), 1)


def load_data(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def feeds_from_data(model: ModelInfo, data: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]],
                    offset: int = 0) -> dict[str, np.ndarray]:
    """Rows ``offset .. offset+batch`` of each input's samples (cycling when
    the file holds fewer), cast to the model's input type. The non-batch
    dimensions were checked against the job's shapes at submit time."""
    feeds = {}
    for info in model.inputs:
        samples = data[info.name]
        shape = tuple(shapes[info.name])
        if not shape:
            feeds[info.name] = np.asarray(samples).astype(_numpy_dtype(info.dtype))
            continue
        rows = [(offset + i) % samples.shape[0] for i in range(shape[0])]
        feeds[info.name] = np.ascontiguousarray(samples[rows]).astype(_numpy_dtype(info.dtype))
    return feeds


def _numpy_dtype(dtype: str):
    # numpy has no bfloat16 (the backend casts float32); strings stay as given.
    return {"bfloat16": np.float32, "string": np.str_}.get(dtype, dtype)
