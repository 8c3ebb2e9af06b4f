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
                        data: dict[str, np.ndarray] | None = None, rows: list[int] | None = None):
    """Feeds for calibration. With the user's data: the calibration rows
    ``rows`` ([start, stop), decided at submit: farm.input_data.split_rows)
    in batches of the shapes' batch; without ``rows`` (jobs submitted before
    the split existed) ``samples`` batches after the first one. Without
    data: ``samples`` synthetic batches with seeds distinct from the
    measurement seed."""
    if data is not None and rows is not None:
        yield from (feeds for feeds, _ in row_batches(model, data, shapes, rows))
        return
    for index in range(samples):
        if data is not None:
            yield feeds_from_data(model, data, shapes, offset=(index + 1) * _batch(shapes))
        else:
            yield make_feeds(model, shapes, seed=seed + 1000 + index)


def row_batches(model: ModelInfo, data: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]],
                rows: list[int]):
    """(feeds, valid) over rows [start, stop) of the data in batches of the
    shapes' batch; a last, partial batch is filled up with rows from the
    start of the range (``valid`` says how many are new)."""
    start, stop = rows
    batch = _batch(shapes)
    for offset in range(start, stop, batch):
        valid = min(batch, stop - offset)
        yield feeds_from_rows(model, data, shapes, [start + (offset - start + i) % (stop - start)
                                                    for i in range(batch)]), valid


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
    return feeds_from_rows(model, data, shapes, [offset + i for i in range(_batch(shapes))])


def feeds_from_rows(model: ModelInfo, data: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]],
                    rows: list[int]) -> dict[str, np.ndarray]:
    feeds = {}
    for info in model.inputs:
        samples = data[info.name]
        shape = tuple(shapes[info.name])
        if not shape:
            feeds[info.name] = np.asarray(samples).astype(_numpy_dtype(info.dtype))
            continue
        picked = [rows[i % len(rows)] % samples.shape[0] for i in range(shape[0])]
        feeds[info.name] = np.ascontiguousarray(samples[picked]).astype(_numpy_dtype(info.dtype))
    return feeds


def _numpy_dtype(dtype: str):
    # numpy has no bfloat16 (the backend casts float32); strings stay as given.
    return {"bfloat16": np.float32, "string": np.str_}.get(dtype, dtype)
