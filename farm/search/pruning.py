"""Constraint-aware pruning: configurations that cannot meet the user's
constraints are never built, each with its reason.

Rules (each from a measured configuration of the same device class and
workload):
1. Latency grows with batch size (and streams) at a fixed backend,
   precision, profile and build knobs: a configuration whose latency broke
   ``max_latency_ms`` prunes every larger one of its series.
2. Memory grows the same way: a broken ``max_memory_mb`` prunes larger ones.
3. A precision that failed the accuracy gate (or ``max_rel_error``) at one
   batch size is skipped at the other batch sizes (and streams) of its
   series, unless ``search.retry_failed_precisions`` is set. Other build
   knobs are a different series: the numerics may differ (ONNX Runtime's
   graph optimisation level changes a detector's fp32 outputs enough to
   pass or fail).
4. A precision the backend refused as unsupported is skipped everywhere in
   the group for that backend.
"""

from __future__ import annotations

from farm.search.observe import Observation
from farm.search.space import ORDERED_AXES, Candidate


def _larger(a: Candidate, b: Candidate) -> bool:
    """b lies beyond a on every ordered axis of their shared series."""
    return a.series() == b.series() and all(b.axes.get(k, 0) >= a.axes.get(k, 0) for k in ORDERED_AXES) \
        and any(b.axes.get(k, 0) > a.axes.get(k, 0) for k in ORDERED_AXES)


def _precision_of(c: Candidate) -> tuple:
    return (c.group, c.axes.get("backend"), c.axes.get("precision"))


def _accuracy_failure(obs: Observation, constraints: dict) -> str | None:
    if obs.status == "done" and obs.accuracy_pass is False:
        return "failed the accuracy gate"
    limit = constraints.get("max_rel_error")
    if obs.status == "done" and limit is not None and (obs.rel_l2_error or 0.0) > limit:
        return f"rel L2 error {obs.rel_l2_error:.3g} > max_rel_error {limit:g}"
    return None


def _describe(c: Candidate) -> str:
    return ", ".join(f"{k} {v}" for k, v in c.axes.items() if k != "backend" and not (k == "streams" and v == 1))


def prune(candidates: list[Candidate], observations: dict[int, Observation], constraints: dict,
          retry_failed_precisions: bool = False) -> dict[int, str]:
    """idx -> reason for every unbuilt candidate the rules rule out."""
    by_idx = {c.idx: c for c in candidates}
    open_ = [c for c in candidates if c.idx not in observations]
    reasons: dict[int, str] = {}
    stat = constraints.get("latency_stat", "p99")
    for idx, obs in sorted(observations.items()):
        source = by_idx.get(idx)
        if source is None:
            continue
        rules = []
        limit = constraints.get("max_latency_ms")
        if obs.status == "done" and limit is not None and (obs.latency_stat(stat) or 0) > limit:
            rules.append((_larger, f"{stat} {obs.latency_stat(stat):.4g} ms > max_latency_ms {limit:g} at "
                          f"{_describe(source)}; latency grows with batch"))
        limit = constraints.get("max_memory_mb")
        if obs.status == "done" and limit is not None and obs.memory_mb is not None and obs.memory_mb > limit:
            rules.append((_larger, f"memory {obs.memory_mb:.4g} MB > max_memory_mb {limit:g} at "
                          f"{_describe(source)}; memory grows with batch"))
        failure = _accuracy_failure(obs, constraints)
        if failure and not retry_failed_precisions:
            rules.append((lambda a, b: a.series() == b.series(),
                          f"{source.axes.get('precision')} {failure} at {_describe(source)}"))
        precision = str(source.axes.get("precision"))
        if obs.status == "unsupported" and precision in (obs.error or ""):
            rules.append((lambda a, b: _precision_of(a) == _precision_of(b),
                          f"{precision} unsupported at {_describe(source)}: {(obs.error or '').strip()[:160]}"))
        for related, reason in rules:
            for candidate in open_:
                if candidate.idx not in reasons and related(source, candidate):
                    reasons[candidate.idx] = reason
    return reasons
