"""Ranking: the best configuration per (device class, workload) under
constraints, with its statistical ties. The one place that ranks: ``farm
best``, ``farm fetch``, the HTML report, the dashboard and search call
``rank`` (``find_best`` in candidates.py loads the rows first); what may
win is farm/reports/eligibility.py's rule, which candidates.py's SQL pre-filter
renders (``sql_conditions``).

Rule (docs/fields.md, "farm best"):
1. A workload is one model on one profile's shapes (``workload``); batch
   size is a free axis inside it. Configurations are compared only within a
   workload on one device class: every workload gets its own winner.
2. Per configuration (device class, workload, backend, precision, batch,
   and the build knobs: the job key) the newest finished result counts (a
   re-run supersedes older ones).
3. Eligible: farm/reports/eligibility.py's rule (the one every caller uses):
   status done, measured, accuracy ``pass`` or ``reference`` (the fp32
   reference itself); ``unchecked`` only with allow_unchecked; ``fail``
   never; not flagged ``host_bound`` or ``host_contended`` (the figure is
   the host's, not the device's) unless allow_host_bound; and every
   constraint given. A constraint on a figure that was not measured is not
   met (missing memory or error never qualifies).
4. The objective's own figure decides: latency = p50 per request (one call
   of the job's batch) or per sample (p50 / batch); throughput = samples/s.
   The winner has the best point estimate of that figure (exact equals:
   lower p99, then smaller memory, artifact, build time, then job id).
5. Tied with the winner: configurations within TIE_WINDOW of its figure
   whose 95 % bootstrap interval of that figure overlaps the winner's. A tie
   is never better than the winner on the objective's point estimate.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from farm.devices import device_classes_matching
from farm.reports.eligibility import (ELIGIBLE_ACCURACY, HOST_BOUND, HOST_CONTENDED, HOST_FLAGS,  # noqa: F401 (re-exported)
                              Constraints)
from farm.reports.rows import REPORT_FIELDS, jobs_frame
from farm.reports.serving import SERVING_OBJECTIVES, serving_figure

# Serving objectives (farm/reports/serving.py) rank LoadGen's VALID results only, and energy's inferences/J.
BEST_OBJECTIVES = ("latency", "throughput", *SERVING_OBJECTIVES)
LATENCY_PER = ("request", "sample")
LATENCY_STATS = ("p99", "p50")
TIE_WINDOW = 0.25  # a point estimate >25 % worse than the leader's is never a tie
CONFIG_KEYS = ["device_class", "workload", "backend", "precision", "batch_size"]
GROUP_KEYS = ["device_class", "workload"]
TIE_BREAK = ["latency_p99_ms", "memory_mb", "artifact_size", "build_s"]
BEST_FIELDS = REPORT_FIELDS + ("role", "tied_with", "objective", "objective_value", "objective_unit")
HOST_BOUND_REASON = ("flagged host_bound: the figure is the host's launch rate, not the GPU's "
                     "(docs/fields.md); --allow-host-bound ranks it")
HOST_CONTENDED_REASON = ("flagged host_contended: measured while the host's CPUs were oversubscribed "
                         "(docs/fields.md); re-measure on a quiet host, or --allow-host-bound ranks it")
FLAG_REASONS = {HOST_BOUND: HOST_BOUND_REASON, HOST_CONTENDED: HOST_CONTENDED_REASON}


def _newest_per_config(frame: pd.DataFrame) -> pd.DataFrame:
    """Rule 2. The job key (the whole job configuration) is part of the
    configuration where the frame has it: jobs that differ only in build
    knobs (a search's knob axes) are two configurations, as in the model
    scope's scan (candidates.py); an identical re-run supersedes."""
    if "sweep_created_at" in frame:
        frame = frame.sort_values(["sweep_created_at", "seq"], kind="stable")
    keys = CONFIG_KEYS + (["job_key"] if "job_key" in frame and frame["job_key"].notna().all() else [])
    return frame.drop_duplicates(subset=keys, keep="last")


def matches_device(frame: pd.DataFrame, device: str | None) -> pd.Series:
    if not device:
        return pd.Series(True, index=frame.index)
    pairs = frame[["device_class", "device"]].fillna("").drop_duplicates().itertuples(index=False, name=None)
    return frame["device_class"].isin(device_classes_matching(pairs, device))


def host_bound(frame: pd.DataFrame) -> pd.Series:
    """Rows flagged host_bound or host_contended (eligibility.HOST_FLAGS)."""
    flags = frame["flags"] if "flags" in frame else pd.Series([[]] * len(frame), index=frame.index)
    return flags.map(lambda f: isinstance(f, (list, tuple)) and any(x in f for x in HOST_FLAGS)).astype(bool)


def eligible(frame: pd.DataFrame, c: Constraints) -> pd.DataFrame:
    """Rules 2 and 3: newest result per configuration, then the filters
    (farm/reports/eligibility.py decides per row what may win)."""
    frame = frame[(frame["status"] == "done") & frame["latency_p50_ms"].notna()]
    frame = _newest_per_config(frame)
    keep = matches_device(frame, c.device) & c.eligible_mask(frame)
    if c.profile:
        keep &= frame["profile"] == c.profile
    keep &= objective_figure(frame, c)[0].notna()
    return frame[keep]


SYNTHETIC_REASON = ("accuracy unchecked (synthetic inputs): int8/fp8 calibrated and checked on synthetic inputs "
                    "only; give the spec real samples ('data:') or set accuracy.synthetic_ok; --allow-unchecked "
                    "ranks it")
UNCHECKED_REASON = "accuracy unchecked: no accuracy figures; --allow-unchecked ranks it"


def excluded(frame: pd.DataFrame, c: Constraints) -> list[dict]:
    """Configurations that would have won or tied but for a host flag
    (host_bound, host_contended) or an unchecked accuracy (int8/fp8 on
    synthetic inputs only, issue 22), with the reason they were not ranked
    (shown by ``farm best`` and the summary sentences)."""
    relaxed = replace(c, allow_host_bound=True, allow_unchecked=True)
    if relaxed == c or frame.empty or not kept_out(frame, c).any():
        return []
    contenders = _rank_eligible(eligible(frame, relaxed), c)
    out = []
    for r in contenders.to_dict("records"):
        reason = _exclusion_reason(r, c)
        if reason is not None:
            out.append({"job_id": r["job_id"], "device_class": r["device_class"], "workload": r["workload"],
                        "backend": r["backend"], "precision": r["precision"], "batch_size": int(r["batch_size"]),
                        "would_be": r["role"], "reason": reason})
    return out


def left_out_counts(left_out: list[dict]) -> str:
    """``1 flagged host_bound were not ranked; 2 accuracy unchecked were not ranked`` ('' for none):
    why ``excluded`` rows were kept out, as ``farm best`` and ``farm fetch`` refuse with it."""
    from collections import Counter

    labels = Counter(row["reason"].split(":")[0] for row in left_out)
    return "; ".join(f"{n} {label} were not ranked" for label, n in labels.items())


def admitting_flags(left_out: list[dict]) -> list[str]:
    """The CLI flags that would rank the ``excluded`` rows (--allow-host-bound, --allow-unchecked)."""
    host = set(FLAG_REASONS.values())
    flags = {"--allow-host-bound" if row["reason"] in host else "--allow-unchecked" for row in left_out}
    return sorted(flags)


def kept_out(frame: pd.DataFrame, c: Constraints) -> pd.Series:
    """Rows only a flag or an unchecked accuracy keeps from ranking (what ``excluded`` looks among)."""
    out = pd.Series(False, index=frame.index)
    if not c.allow_host_bound:
        out |= host_bound(frame)
    if not c.allow_unchecked and "accuracy_status" in frame:
        out |= frame["accuracy_status"] == "unchecked"
    return out


def _exclusion_reason(row: dict, c: Constraints) -> str | None:
    flags = row.get("flags")
    if not c.allow_host_bound and isinstance(flags, (list, tuple)):
        for flag, reason in FLAG_REASONS.items():
            if flag in flags:
                return reason
    if row.get("accuracy_status") == "unchecked" and not c.allow_unchecked:
        return SYNTHETIC_REASON if str(row.get("accuracy_inputs") or "").startswith("synthetic") else UNCHECKED_REASON
    return None


def objective_figure(frame: pd.DataFrame, c: Constraints) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(point, low, high) of the objective's own figure; a row without
    samples has a zero-width interval."""
    if c.objective in SERVING_OBJECTIVES:  # one LoadGen run per figure: no interval
        point = serving_figure(frame, c.objective, c.p99_ms)
        low = high = point
    elif c.objective == "throughput":
        point, low, high = frame["throughput"], frame["throughput_ci_low"], frame["throughput_ci_high"]
    else:
        point, low, high = (frame["latency_p50_ms"], frame["latency_p50_ci_low_ms"],
                            frame["latency_p50_ci_high_ms"])
        if c.latency_per == "sample":
            batch = frame["batch_size"].astype(float)
            point, low, high = point / batch, low / batch, high / batch
    point = pd.to_numeric(point, errors="coerce")
    low = pd.to_numeric(low, errors="coerce").fillna(point)
    high = pd.to_numeric(high, errors="coerce").fillna(point)
    return point, low, high


def within_window(value: np.ndarray, leader: float, objective: str) -> np.ndarray:
    if Constraints(objective=objective).lower_is_better:
        return value <= leader * (1 + TIE_WINDOW)
    return value >= leader / (1 + TIE_WINDOW)


def rank(frame: pd.DataFrame, c: Constraints = Constraints()) -> pd.DataFrame:
    """Winner and tied rows per (device class, workload): BEST_FIELDS plus
    hidden columns, ordered by device class, then workload (winner first,
    then its ties, best first); ``attrs["excluded"]`` lists the
    configurations kept from winning by their host_bound flag (``excluded``).
    Vectorised over groups: a model swept over thousands of profiles has
    thousands of workloads."""
    left_out = excluded(frame, c)
    ranked = _rank_eligible(eligible(frame, c), c)
    ranked.attrs["excluded"] = left_out
    return ranked


def _rank_eligible(frame: pd.DataFrame, c: Constraints) -> pd.DataFrame:
    if frame.empty:
        return frame.assign(role=[], tied_with=[], objective=[], objective_value=[], objective_unit=[])
    point, low, high = objective_figure(frame, c)
    scored = frame.assign(objective_value=point.to_numpy(dtype=float), _low=low.to_numpy(dtype=float),
                          _high=high.to_numpy(dtype=float))
    scored["_better"] = scored["objective_value"] if c.lower_is_better else -scored["objective_value"]
    scored = scored.sort_values(GROUP_KEYS + ["_better"] + TIE_BREAK + ["job_id"], na_position="last",
                                kind="stable").reset_index(drop=True)
    grouped = scored.groupby(GROUP_KEYS, sort=False)
    lead_value, lead_low = grouped["objective_value"].transform("first"), grouped["_low"].transform("first")
    lead_high, lead_id = grouped["_high"].transform("first"), grouped["job_id"].transform("first")
    is_winner = grouped.cumcount() == 0
    tied = (~is_winner & within_window(scored["objective_value"].to_numpy(), lead_value.to_numpy(), c.objective)
            & (scored["_low"] <= lead_high) & (lead_low <= scored["_high"]))
    kept = scored[is_winner | tied].copy()
    kept["role"] = np.where(is_winner[kept.index], "winner", "tied")
    ties_of = kept[kept["role"] == "tied"].groupby(GROUP_KEYS, sort=False)["job_id"].agg(list)
    winner_ties = [ties_of.get(tuple(k), []) for k in kept[GROUP_KEYS].itertuples(index=False, name=None)]
    kept["tied_with"] = [ties if role == "winner" else [lead]
                         for role, ties, lead in zip(kept["role"], winner_ties, lead_id[kept.index])]
    kept = kept.drop(columns=["_better", "_low", "_high"]).reset_index(drop=True)
    return kept.assign(objective=c.objective, objective_unit=c.unit)


select_best = rank  # the name earlier callers use


def best_per_device(rows: list[dict], **constraints) -> pd.DataFrame:
    """``rank`` over ``job_rows``-style dicts (e.g. ``farm report --format json``)."""
    return rank(jobs_frame(rows), Constraints(**constraints))
