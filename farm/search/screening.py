"""Cheap before expensive: a sequential test on raw samples that drops a
candidate as soon as it cannot be tied with the leader.

Group-sequential design with K looks at n = 8, 16, 32, ... samples (the
candidate's and the leader's first n, in the order they were measured). At
each look both medians get a bootstrap interval (farm/reports/confidence.py)
at level 1 - alpha / (2K); the candidate is dropped once its interval lies
wholly on the worse side of the leader's (for throughput: the mean's
interval). If the candidate's true value is at least as good as the
leader's, a drop needs one of the two intervals to miss its true value at
some look: by Bonferroni over 2 intervals x K looks, the chance is at most
alpha (default 5 %). That bound assumes independent samples; GPU samples
drift with clocks, which is why finalists are re-measured interleaved
(farm/search/finals.py). benchmarks/search_replay.py reports the empirical
rate on recorded sweeps.

Survivors "could still win": they go to the finals. ``samples_used`` is
what a measurement that stops at the drop would have cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farm.reports.confidence import median_ci, throughput_ci

FIRST_LOOK = 8


@dataclass(frozen=True)
class Verdict:
    keep: bool
    samples_used: int
    looks: int
    reason: str


def looks(n: int) -> list[int]:
    points, k = [], FIRST_LOOK
    while k < n:
        points.append(k)
        k *= 2
    return points + [n] if n else []


def _worse(cand, lead, objective: str, batch: tuple[int, int], level: float) -> bool:
    if objective == "latency":
        low, high = median_ci([cand, lead], level=level)
        return low[0] > high[1]  # candidate's fastest plausible median is slower than the leader's slowest
    low, high = throughput_ci([cand, lead], list(batch), level=level)
    return high[0] < low[1]


def screen(candidate: list[float], leader: list[float], objective: str = "latency", alpha: float = 0.05,
           batches: tuple[int, int] = (1, 1)) -> Verdict:
    """Drop ``candidate`` (keep=False) once it is worse than ``leader`` beyond
    noise at some look; keep it when the samples run out first."""
    n = min(len(candidate), len(leader))
    points = looks(n)
    if not points:
        return Verdict(True, len(candidate), 0, "no samples to compare")
    level = 1 - alpha / (2 * len(points))
    cand, lead = np.asarray(candidate, dtype=float), np.asarray(leader, dtype=float)
    for look, size in enumerate(points, start=1):
        if _worse(cand[:size], lead[:size], objective, batches, level):
            return Verdict(False, size, look, f"worse than the leader beyond noise after {size} samples "
                                              f"(sequential test, alpha {alpha:g})")
    return Verdict(True, len(candidate), len(points), "could still win")
