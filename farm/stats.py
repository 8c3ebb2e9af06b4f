"""Latency statistics from raw samples (milliseconds)."""

from __future__ import annotations

import math

import numpy as np

PERCENTILES = (50, 90, 95, 99)


def summarize(samples_ms, batch_size: int = 1) -> dict[str, float | int | None]:
    """count/mean/p50/p90/p95/p99/stdev/cv and throughput (samples/s).

    Percentiles use linear interpolation (numpy default); stdev is the sample
    standard deviation; cv = stdev / mean. Throughput is batch / mean latency,
    i.e. samples per second for back-to-back inference.
    """
    data = np.asarray(samples_ms, dtype=np.float64)
    if data.size == 0:
        return {"count": 0, "mean_ms": None, "stdev_ms": None, "cv": None, "throughput": None,
                **{f"p{p}_ms": None for p in PERCENTILES}}
    mean = float(data.mean())
    stdev = float(data.std(ddof=1)) if data.size > 1 else 0.0
    result: dict[str, float | int | None] = {
        "count": int(data.size),
        "mean_ms": mean,
        "stdev_ms": stdev,
        "cv": stdev / mean if mean > 0 else None,
        "throughput": batch_size * 1000.0 / mean if mean > 0 else None,
    }
    for p, value in zip(PERCENTILES, np.percentile(data, PERCENTILES)):
        result[f"p{p}_ms"] = float(value)
    return result


def median_cv(samples_ms) -> float:
    """Robust spread: MAD-based CV, insensitive to a few outliers."""
    data = np.asarray(samples_ms, dtype=np.float64)
    if data.size < 2:
        return 0.0
    median = float(np.median(data))
    mad = float(np.median(np.abs(data - median))) * 1.4826
    return mad / median if median > 0 and not math.isnan(mad) else 0.0
