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


def calibration_batches(model: ModelInfo, shapes: dict[str, tuple[int, ...]], samples: int, seed: int):
    """``samples`` feeds with different seeds (distinct from the measurement seed)."""
    for index in range(samples):
        yield make_feeds(model, shapes, seed=seed + 1000 + index)
