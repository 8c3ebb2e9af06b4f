"""What a search knows of a built configuration, and how two are compared.

Objectives and constraints mean what they mean in ``farm best``
(farm/reports/best.py): latency is the p50 (lower is better), throughput is
samples/s (higher is better); a constraint on latency bounds ``latency_stat``
(p99 unless told). "Better beyond noise" means the 95 % bootstrap intervals
of the two (farm/reports/confidence.py) do not overlap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

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
    rel_l2_error: float | None = None
    rel_l2_limit: float | None = None  # the accuracy gate's limit on rel_l2_error (None: the precision's default)
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


def violation(obs: Observation, constraints: dict) -> str | None:
    """Why a measured configuration fails the user's constraints, or None."""
    if obs.status != "done":
        last = (obs.error or "").strip().splitlines()[-1:]
        return obs.status + (f": {last[0][:160]}" if last else "")
    if obs.p50_ms is None:
        return "not measured here"
    if obs.accuracy_pass is False:
        return "failed the accuracy gate" + (f" (rel L2 {obs.rel_l2_error:.3g})" if obs.rel_l2_error is not None else "")
    stat = constraints.get("latency_stat", "p99")
    limit = constraints.get("max_latency_ms")
    if limit is not None and (obs.latency_stat(stat) or 0) > limit:
        return f"{stat} latency {obs.latency_stat(stat):.4g} ms exceeds max_latency_ms {limit:g}"
    limit = constraints.get("min_throughput")
    if limit is not None and (obs.throughput or 0) < limit:
        return f"throughput {obs.throughput:.4g}/s below min_throughput {limit:g}"
    limit = constraints.get("max_memory_mb")
    if limit is not None and obs.memory_mb is not None and obs.memory_mb > limit:
        return f"memory {obs.memory_mb:.4g} MB exceeds max_memory_mb {limit:g}"
    limit = constraints.get("max_rel_error")
    if limit is not None and (obs.rel_l2_error or 0.0) > limit:
        return f"rel L2 error {obs.rel_l2_error:.3g} exceeds max_rel_error {limit:g}"
    return None


def feasible(obs: Observation | None, constraints: dict) -> bool:
    return obs is not None and violation(obs, constraints) is None
