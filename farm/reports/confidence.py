"""Bootstrap confidence intervals for the median latency, from raw samples.

A naive bootstrap draws B resamples of n samples each: O(B*n) per
configuration, far too slow for thousands of configurations with thousands
of samples. We use an exact shortcut instead. Sort the samples; a
resample's k-th smallest value is ``sorted[floor(n * U_(k))]`` where
``U_(k)`` is the k-th order statistic of n uniforms, i.e. Beta(k, n-k+1).
So each bootstrap median costs one Beta draw (two for even n: the next
order statistic is ``U_(k) + (1-U_(k)) * Beta(1, n-k)``). The resulting
distribution is the bootstrap distribution itself, not an approximation;
tests compare it with a naive bootstrap.

The rank draws depend only on n, so they are drawn once per distinct n from
a generator seeded with ``(seed, n)``: a configuration's interval never
depends on which other configurations are in the same report.

The interval is the percentile interval (default 95 %, 2000 resamples).
Throughput is batch * 1000 / mean latency; its interval uses the normal
limit of the bootstrap for the mean (mean +- z * s / sqrt(n)).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

LEVEL = 0.95
RESAMPLES = 2000
SEED = 20240601
_CHUNK = 512  # configurations per vectorised block (bounds memory to ~CHUNK * RESAMPLES floats)


def _median_ranks(n: int, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into the sorted sample) of the two middle values of each resample."""
    rng = np.random.default_rng([seed, n])
    k = (n + 1) // 2
    low = rng.beta(k, n - k + 1, size=resamples)
    if n % 2:
        high = low
    else:
        high = low + (1.0 - low) * rng.beta(1, n - k, size=resamples)
    clip = lambda u: np.minimum((u * n).astype(np.int64), n - 1)  # noqa: E731
    return clip(low), clip(high)


def median_ci(samples_list, level: float = LEVEL, resamples: int = RESAMPLES,
              seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) arrays: the bootstrap CI of each sample list's median.

    Empty sample lists give NaN. Vectorised over configurations that share a
    sample count; each block is one gather and one quantile call.
    """
    count = len(samples_list)
    low, high = np.full(count, np.nan), np.full(count, np.nan)
    arrays = [np.asarray(s, dtype=np.float64) for s in samples_list]
    sizes = np.array([a.size for a in arrays], dtype=np.int64)
    quantiles = [(1 - level) / 2, 1 - (1 - level) / 2]
    for n in np.unique(sizes[sizes > 0]).tolist():
        rows = np.flatnonzero(sizes == n)
        r_low, r_high = _median_ranks(n, resamples, seed)
        for start in range(0, rows.size, _CHUNK):
            block = rows[start:start + _CHUNK]
            data = np.sort(np.stack([arrays[i] for i in block.tolist()]), axis=1)
            medians = (data[:, r_low] + data[:, r_high]) * 0.5
            low[block], high[block] = np.quantile(medians, quantiles, axis=1)
    return low, high


def throughput_ci(samples_list, batch_sizes, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) samples/s from the CI of the mean latency (normal limit)."""
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    low, high = np.full(len(samples_list), np.nan), np.full(len(samples_list), np.nan)
    for i, (samples, batch) in enumerate(zip(samples_list, batch_sizes)):
        data = np.asarray(samples, dtype=np.float64)
        if data.size == 0:
            continue
        mean = data.mean()
        half = z * (data.std(ddof=1) if data.size > 1 else 0.0) / np.sqrt(data.size)
        low[i] = batch * 1000.0 / (mean + half)
        high[i] = batch * 1000.0 / (mean - half) if mean > half else np.inf
    return low, high


def add_intervals(frame, samples_list, level: float = LEVEL):
    """Set the four CI columns of a report frame from its rows' samples."""
    lo, hi = median_ci(samples_list, level)
    frame["latency_p50_ci_low_ms"], frame["latency_p50_ci_high_ms"] = lo, hi
    batches = frame["batch_size"].fillna(1).to_numpy()
    tlo, thi = throughput_ci(samples_list, batches, level)
    frame["throughput_ci_low"], frame["throughput_ci_high"] = tlo, thi
    return frame


def bootstrap_medians(samples, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """The bootstrap distribution of one sample list's median (same
    shortcut as median_ci). Two lists compared with each other need
    different seeds, or equal-sized lists would draw the same ranks."""
    data = np.sort(np.asarray(samples, dtype=np.float64))
    if data.size == 0:
        return np.full(resamples, np.nan)
    low, high = _median_ranks(data.size, resamples, seed)
    return (data[low] + data[high]) * 0.5
