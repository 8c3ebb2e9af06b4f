"""What a search knows of a built configuration, and how two are compared.

Objectives and constraints mean what they mean in ``farm best``: which
configuration may win is farm/reports/eligibility.py's rule, applied per
observation (``violation``); latency is the p50 (lower is better),
throughput is samples/s (higher is better); a constraint on latency bounds
``latency_stat`` (p99 unless told). "Better beyond noise" means the 95 % bootstrap intervals
of the two (farm/reports/confidence.py) do not overlap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from farm.reports.eligibility import Constraints
from farm.reports.confidence import median_ci, throughput_ci


@dataclass
class Observation:
    idx: int
    status: str  # done | failed | unsupported
    batch_size: int
    samples_ms: list = field(default_factory=list)
    p50_ms: float | None = None
    p99_ms: float | None = None
    throughput: float | None = None
    memory_mb: float | None = None
    accuracy_pass: bool | None = None
    accuracy_status: str | None = None  # pass | fail | unchecked | reference (None: from accuracy_pass)
    flags: list = field(default_factory=list)  # measurement flags (host_bound, host_contended, ...)
    rel_l2_error: float | None = None
    rel_l2_limit: float | None = None  # the accuracy gate's limit on rel_l2_error (None: the precision's default)
    accuracy_metric: str | None = None  # the task metric that decided the verdict ("iou 0.748"), if one did
    error: str | None = None
    job_id: str | None = None
    reused: bool = False  # a finished identical job: no build was spent

    @property
    def measured(self) -> bool:
        return self.status == "done" and self.p50_ms is not None

    @cached_property
    def latency_ci(self) -> tuple[float, float]:
        if not self.samples_ms:
            return (self.p50_ms, self.p50_ms)
        low, high = median_ci([self.samples_ms])
        return float(low[0]), float(high[0])

    @cached_property
    def throughput_ci(self) -> tuple[float, float]:
        if not self.samples_ms:
            return (self.throughput, self.throughput)
        low, high = throughput_ci([self.samples_ms], [self.batch_size])
        return float(low[0]), float(high[0])

    def latency_stat(self, stat: str) -> float | None:
        return self.p99_ms if stat == "p99" else self.p50_ms


def from_samples(idx: int, batch_size: int, samples_ms, **more) -> Observation:
    data = np.asarray(samples_ms, dtype=float)
    stats = {}
    if data.size:
        stats = {"p50_ms": float(np.percentile(data, 50)), "p99_ms": float(np.percentile(data, 99)),
                 "throughput": batch_size * 1000.0 / float(data.mean())}
    return Observation(idx=idx, status=more.pop("status", "done"), batch_size=batch_size,
                       samples_ms=list(samples_ms), **{**stats, **more})


def score(obs: Observation, objective: str) -> float:
    """Higher is better."""
    return -obs.p50_ms if objective == "latency" else obs.throughput


def interval(obs: Observation, objective: str) -> tuple[float, float]:
    """The objective's interval as (worse end, better end) in score units."""
    if objective == "latency":
        low, high = obs.latency_ci
        return -high, -low
    return obs.throughput_ci


def better(a: Observation, b: Observation, objective: str) -> bool:
    return score(a, objective) > score(b, objective)


def significantly_better(a: Observation, b: Observation, objective: str) -> bool:
    """a beats b beyond the noise: a's interval lies wholly above b's."""
    return interval(a, objective)[0] > interval(b, objective)[1]


def row(obs: Observation) -> dict:
    """The observation as a report row, for the eligibility rule."""
    return {"status": obs.status, "latency_p50_ms": obs.p50_ms, "latency_p99_ms": obs.p99_ms,
            "throughput": obs.throughput, "memory_mb": obs.memory_mb, "rel_l2_error": obs.rel_l2_error,
            "accuracy_status": obs.accuracy_status, "accuracy_pass": obs.accuracy_pass, "flags": obs.flags,
            "error": obs.error}


def constraints_of(constraints: Constraints | dict, objective: str = "latency") -> Constraints:
    """A search's constraints block (a dict) as the one eligibility vocabulary."""
    return constraints if isinstance(constraints, Constraints) else Constraints.of_search(objective, constraints)


def violation(obs: Observation, constraints: Constraints | dict) -> str | None:
    """Why a measured configuration may not win under the user's constraints
    (farm/reports/eligibility.py: the rule ``farm best`` applies), or None."""
    return constraints_of(constraints).violation(row(obs))


def feasible(obs: Observation | None, constraints: Constraints | dict) -> bool:
    return obs is not None and violation(obs, constraints) is None
