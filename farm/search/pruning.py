"""Constraint-aware pruning: configurations that cannot meet the user's
constraints are never built, each with its reason.

Rules (each from a measured configuration of the same device class and
workload), each with a noise allowance: a pruned configuration is one that
would not have met the constraint even allowing for the measurement's noise.
1. Latency grows with batch size (and streams) at a fixed backend,
   precision, profile and build knobs: a larger configuration's p50 (and so
   its p99) is at least a smaller one's p50. So a configuration prunes every
   larger one of its series when its *median* breaks ``max_latency_ms``
   beyond noise (the low end of the median's 95 % bootstrap interval is
   above the bound). A p99 over the bound alone prunes nothing: a p99 of a
   few dozen samples on a shared machine is one stall (seen: a 14.6 ms p50
   with a 65 ms p99 at batch 1, the same series at 5.3 ms p50 at batch 2).
2. Memory grows the same way: a broken ``max_memory_mb`` prunes larger ones.
3. A precision that failed the accuracy gate (or ``max_rel_error``) at one
   batch size is skipped at the other batch sizes (and streams) of its
   series, unless ``search.retry_failed_precisions`` is set, when the
   failure is clear: the error is more than CLEAR_FAILURE times the limit.
   A marginal failure prunes nothing: the error is measured on that batch's
   inputs and another batch's inputs can pass (recorded on PP-OCR models,
   limit 0.1: int8 rel L2 0.226 at batch 1 and 0.015 to 0.098 at batches
   2-16 of the same series; 0.11 and 0.12 at batches 1 and 2, 0.09 at 4, 8
   and 16; fp32 1.6e-4 at batches 1-2 and 8e-5 at 4, limit 1e-4). Other build knobs
   are a different series: the numerics may differ (ONNX Runtime's graph
   optimisation level changes a detector's fp32 outputs enough to pass or
   fail).
4. A precision the backend refused as unsupported is skipped everywhere in
   the group for that backend.
"""

from __future__ import annotations

from farm.accuracy import DEFAULT_TOLERANCES
from farm.reports.eligibility import Constraints, deciding_figure
from farm.search.observe import Observation, constraints_of
from farm.search.space import ORDERED_AXES, Candidate

CLEAR_FAILURE = 3.0  # an error this many times the limit fails at every batch, not just on one batch's inputs


def _larger(a: Candidate, b: Candidate) -> bool:
    """b lies beyond a on every ordered axis of their shared series."""
    return a.series() == b.series() and all(b.axes.get(k, 0) >= a.axes.get(k, 0) for k in ORDERED_AXES) \
        and any(b.axes.get(k, 0) > a.axes.get(k, 0) for k in ORDERED_AXES)


def _precision_of(c: Candidate) -> tuple:
    return (c.group, c.axes.get("backend"), c.axes.get("precision"))


def _accuracy_failure(obs: Observation, constraints: Constraints, precision: str) -> tuple[str, bool] | None:
    """(why, clear) when the configuration failed on accuracy; clear: beyond
    CLEAR_FAILURE times the limit (or the error or limit is unknown)."""
    if obs.status != "done":
        return None
    error = obs.rel_l2_error
    if obs.accuracy_pass is False:
        limit = obs.rel_l2_limit or DEFAULT_TOLERANCES.get(precision, {}).get("max_rel_error")
        clear = error is None or not limit or error > CLEAR_FAILURE * limit
        why = deciding_figure({"accuracy_metric": obs.accuracy_metric, "rel_l2_error": error})
        return "failed the accuracy gate" + why, clear
    limit = constraints.max_rel_error
    if limit is not None and (error or 0.0) > limit:
        return f"rel L2 error {error:.3g} > max_rel_error {limit:g}", error > CLEAR_FAILURE * limit
    return None


def _median_beyond(obs: Observation, limit: float) -> bool:
    """The median is above ``limit`` beyond noise (the low end of its 95 % interval)."""
    return obs.p50_ms is not None and obs.latency_ci[0] > limit


GROWS = "grows with batch"  # the end of every reason rules 1 and 2 give


def pruned_by_bound(reason: str) -> bool:
    """Was this configuration pruned by rule 1 or 2 (a bound broken at a smaller batch)?"""
    return reason.endswith(GROWS)


def _describe(c: Candidate) -> str:
    return ", ".join(f"{k} {v}" for k, v in c.axes.items() if k != "backend" and not (k == "streams" and v == 1))


def prune(candidates: list[Candidate], observations: dict[int, Observation], constraints: Constraints | dict,
          retry_failed_precisions: bool = False) -> dict[int, str]:
    """idx -> reason for every unbuilt candidate the rules rule out (the
    bounds are the eligibility vocabulary's, farm/reports/eligibility.py)."""
    constraints = constraints_of(constraints)
    by_idx = {c.idx: c for c in candidates}
    open_ = [c for c in candidates if c.idx not in observations]
    reasons: dict[int, str] = {}
    for idx, obs in sorted(observations.items()):
        source = by_idx.get(idx)
        if source is None:
            continue
        rules = []
        limit = constraints.max_latency_ms
        if obs.status == "done" and limit is not None and _median_beyond(obs, limit):
            rules.append((_larger, f"p50 {obs.p50_ms:.4g} ms (95 % interval from {obs.latency_ci[0]:.4g}) > "
                          f"max_latency_ms {limit:g} at {_describe(source)}; latency {GROWS}"))
        limit = constraints.max_memory_mb
        if obs.status == "done" and limit is not None and obs.memory_mb is not None and obs.memory_mb > limit:
            rules.append((_larger, f"memory {obs.memory_mb:.4g} MB > max_memory_mb {limit:g} at "
                          f"{_describe(source)}; memory {GROWS}"))
        precision = str(source.axes.get("precision"))
        failure = _accuracy_failure(obs, constraints, precision)
        if failure and failure[1] and not retry_failed_precisions:
            rules.append((lambda a, b: a.series() == b.series(), f"{precision} {failure[0]} at {_describe(source)}"))
        if obs.status == "unsupported" and precision in (obs.error or ""):
            rules.append((lambda a, b: _precision_of(a) == _precision_of(b),
                          f"{precision} unsupported at {_describe(source)}: {(obs.error or '').strip()[:160]}"))
        for related, reason in rules:
            for candidate in open_:
                if candidate.idx not in reasons and related(source, candidate):
                    reasons[candidate.idx] = reason
    return reasons
