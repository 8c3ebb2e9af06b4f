"""Per-sample accuracy metrics of one output against the fp32 reference.

Every metric maps one sample's output (``actual[i]``, ``expected[i]``: the
batch axis removed) to one number; farm.accuracy aggregates those numbers
over all evaluation samples. Which metric an output gets is declared in the
spec (``accuracy.metrics``, docs/fields.md); outputs without one get the
precision's default gate (rel. L2 and cosine, farm.accuracy).

| metric        | per sample                                                | better |
| rel_l2        | ||a - e|| / ||e||                                          | lower  |
| cosine        | a.e / (||a|| ||e||)                                       | higher |
| max_abs       | max |a - e|                                              | lower  |
| elementwise   | 1 when |a-e| <= atol or |a-e|/|e| <= rtol under the       | higher |
|               | statistic (Polygraphy's CompareFunc.simple rule), else 0 |        |
| topk          | |top-k(a) & top-k(e)| / k over the last axis (k=1: the    | higher |
|               | top-1 class agrees), averaged over leading positions     |        |
| sequence      | 1 when the CTC-collapsed argmax sequences are equal       | higher |
| edit_distance | Levenshtein distance of the collapsed sequences / length  | lower  |
| iou, dice     | of the maps thresholded at ``threshold`` (both empty: 1)  | higher |
| module:func   | the user's ``func(actual, expected) -> float``            | bound  |

The elementwise rule is Polygraphy's (`polygraphy.comparator.CompareFunc.
simple`): the absolute difference and the relative difference
``|a - e| / |e|`` (0 in ``e`` replaced by 2.2e-16) are reduced by the
statistic (``elemwise``: per element, ``max``, ``mean``, ``median`` or
``quantile``) and an output fails where *both* exceed their tolerance; NaN
fails. Polygraphy itself is not a dependency: its comparator judges whole
outputs of one iteration (pass/fail and max/mean/median of the tensor), while
the farm needs one figure per sample, aggregated over hundreds of samples
with an interval; reproducing its 20-line rule keeps its meaning without
its runner/IterationResult machinery (tests/farm/test_task_metrics.py checks
the rule on Polygraphy's own edge cases: zeros in the reference, NaN).
"""

from __future__ import annotations

import importlib
from typing import Callable

import numpy as np

HIGHER_IS_BETTER = {"cosine": True, "elementwise": True, "topk": True, "sequence": True, "iou": True,
                    "dice": True, "rel_l2": False, "max_abs": False, "edit_distance": False}
BUILTIN = tuple(HIGHER_IS_BETTER)
STATISTICS = ("mean", "median", "max", "min", "quantile")
ERROR_STATS = ("elemwise", "mean", "median", "max", "quantile")
EPSILON = 2.220446049250313e-16  # Polygraphy's stand-in for a 0 in the reference
# Default bound per metric where the spec gives none (a task metric is declared because the
# default rel. L2 gate does not measure the task: these are "the task's answer is the same").
DEFAULT_BOUNDS = {"cosine": ("min", 0.99), "elementwise": ("min", 1.0), "topk": ("min", 0.99),
                  "sequence": ("min", 0.95), "iou": ("min", 0.9), "dice": ("min", 0.9),
                  "rel_l2": ("max", 0.1), "max_abs": ("max", None), "edit_distance": ("max", 0.02)}


def _floats(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).ravel()


def rel_l2(a, e, **_) -> float:
    a, e = _floats(a), _floats(e)
    norm = float(np.linalg.norm(e))
    diff = float(np.linalg.norm(a - e))
    return diff / norm if norm > 0 else diff


def cosine(a, e, **_) -> float:
    a, e = _floats(a), _floats(e)
    denom = float(np.linalg.norm(a) * np.linalg.norm(e))
    if denom == 0:
        return 1.0 if np.array_equal(a, e) else 0.0
    return float(np.dot(a, e) / denom)


def max_abs(a, e, **_) -> float:
    a, e = _floats(a), _floats(e)
    return float(np.max(np.abs(a - e))) if a.size else 0.0


def elementwise(a, e, atol: float = 1e-5, rtol: float = 1e-5, error_stat: str = "elemwise",
                quantile: float = 0.99, **_) -> float:
    """1.0 where the sample passes Polygraphy's rule, else 0.0."""
    a, e = _floats(a), _floats(e)
    absdiff = np.abs(a - e)
    reference = np.where(e == 0, EPSILON, e)
    reldiff = absdiff / np.abs(reference)
    if error_stat == "elemwise":
        bad = (np.isnan(absdiff) | (absdiff > atol)) & (np.isnan(reldiff) | (reldiff > rtol))
        return 0.0 if bad.any() else 1.0
    reduce = {"mean": np.mean, "median": np.median, "max": np.max,
              "quantile": lambda x: np.quantile(x, quantile)}[error_stat]
    abs_stat, rel_stat = float(reduce(absdiff)), float(reduce(reldiff))
    failed = (np.isnan(abs_stat) or abs_stat > atol) and (np.isnan(rel_stat) or rel_stat > rtol)
    return 0.0 if failed else 1.0


def topk(a, e, k: int = 1, **_) -> float:
    """Share of the reference's top-k classes (last axis) the output also ranks top-k."""
    a, e = np.asarray(a, dtype=np.float64), np.asarray(e, dtype=np.float64)
    if a.ndim == 0:
        return 1.0 if a == e else 0.0
    k = min(k, a.shape[-1])
    top_a = np.argsort(-a, axis=-1, kind="stable")[..., :k].reshape(-1, k)
    top_e = np.argsort(-e, axis=-1, kind="stable")[..., :k].reshape(-1, k)
    shared = [len(set(x) & set(y)) / k for x, y in zip(top_a.tolist(), top_e.tolist())]
    return float(np.mean(shared))


def ctc_decode(logits, blank: int = 0, axis: int = -1) -> list[int]:
    """Greedy CTC: argmax per time step, repeats merged, blanks dropped (time is the other axis)."""
    ids = np.argmax(np.asarray(logits), axis=axis).ravel().tolist()
    out, last = [], None
    for i in ids:
        if i != last and i != blank:
            out.append(i)
        last = i
    return out


def levenshtein(x: list, y: list) -> int:
    previous = list(range(len(y) + 1))
    for i, a in enumerate(x, 1):
        current = [i]
        for j, b in enumerate(y, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return previous[-1]


def sequence(a, e, blank: int = 0, **_) -> float:
    return 1.0 if ctc_decode(a, blank) == ctc_decode(e, blank) else 0.0


def edit_distance(a, e, blank: int = 0, **_) -> float:
    """Levenshtein distance of the decoded sequences over the reference's length (CER-like)."""
    got, want = ctc_decode(a, blank), ctc_decode(e, blank)
    return levenshtein(got, want) / max(len(want), 1)


def _masks(a, e, threshold: float):
    return np.asarray(a) > threshold, np.asarray(e) > threshold


def iou(a, e, threshold: float = 0.5, **_) -> float:
    x, y = _masks(a, e, threshold)
    union = int(np.logical_or(x, y).sum())
    return 1.0 if union == 0 else float(np.logical_and(x, y).sum()) / union


def dice(a, e, threshold: float = 0.5, **_) -> float:
    x, y = _masks(a, e, threshold)
    total = int(x.sum() + y.sum())
    return 1.0 if total == 0 else 2.0 * float(np.logical_and(x, y).sum()) / total


_FUNCTIONS: dict[str, Callable[..., float]] = {
    "rel_l2": rel_l2, "cosine": cosine, "max_abs": max_abs, "elementwise": elementwise, "topk": topk,
    "sequence": sequence, "edit_distance": edit_distance, "iou": iou, "dice": dice,
}


def is_user_metric(name: str) -> bool:
    return ":" in name


def user_metric(name: str) -> Callable[..., float]:
    """``module:function`` imported (raises ImportError/AttributeError as they are)."""
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)


def metric_function(name: str) -> Callable[..., float]:
    if is_user_metric(name):
        func = user_metric(name)
        return lambda a, e, **_: float(func(a, e))
    return _FUNCTIONS[name]


def metric_params(entry: dict) -> dict:
    """The options a metric function takes from its spec entry."""
    return {k: entry[k] for k in ("atol", "rtol", "error_stat", "quantile", "k", "blank", "threshold")
            if entry.get(k) is not None}


def per_sample(name: str, actual: np.ndarray, expected: np.ndarray, batch: int, **params) -> list[float]:
    """The metric of each sample of one batch. An output whose first axis is
    not the batch (a state tensor, a scalar) counts as one sample."""
    func = metric_function(name)
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.ndim == 0 or actual.shape[0] != batch or expected.shape[:1] != actual.shape[:1]:
        return [func(actual, expected, **params)]
    return [func(actual[i], expected[i], **params) for i in range(batch)]
