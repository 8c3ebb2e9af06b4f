"""Best configuration per device class under constraints, with statistical ties.

Rule (docs/fields.md, "farm best"):
1. Per configuration (device class, backend, precision, batch, profile) the
   newest finished result counts (a re-run supersedes older ones).
2. Eligible: status done, measured, accuracy gate not failed (no verdict
   counts as not failed), and every constraint given.
3. The leader has the best point estimate: lowest p50 latency, or highest
   throughput.
4. Tied with the leader: configurations within TIE_WINDOW of its point
   estimate whose 95 % bootstrap interval overlaps the leader's (the p50
   interval, or the throughput interval for --objective throughput).
5. Among the leader and its ties the winner is picked by: lower p99, then
   smaller memory, then smaller artifact, then shorter build, then better
   point estimate, then job id. Missing figures sort last.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from farm.devices import device_classes_matching
from farm.reports.rows import REPORT_FIELDS, jobs_frame

BEST_OBJECTIVES = ("latency", "throughput")
LATENCY_STATS = ("p99", "p50")
TIE_WINDOW = 0.25  # a point estimate >25 % worse than the leader's is never a tie
CONFIG_KEYS = ["device_class", "backend", "precision", "batch_size", "profile"]
TIE_BREAK = ["latency_p99_ms", "memory_mb", "artifact_size", "build_s"]
BEST_FIELDS = REPORT_FIELDS + ("role", "tied_with", "objective")


@dataclass(frozen=True)
class Constraints:
    objective: str = "latency"
    latency_stat: str = "p99"  # which statistic --max-latency-ms bounds
    max_latency_ms: float | None = None
    min_throughput: float | None = None
    max_memory_mb: float | None = None
    max_rel_error: float | None = None
    device: str | None = None

    @property
    def latency_column(self) -> str:
        return f"latency_{self.latency_stat}_ms"


def _newest_per_config(frame: pd.DataFrame) -> pd.DataFrame:
    if "sweep_created_at" in frame:
        frame = frame.sort_values(["sweep_created_at", "seq"], kind="stable")
    return frame.drop_duplicates(subset=CONFIG_KEYS, keep="last")


def matches_device(frame: pd.DataFrame, device: str | None) -> pd.Series:
    if not device:
        return pd.Series(True, index=frame.index)
    pairs = frame[["device_class", "device"]].fillna("").drop_duplicates().itertuples(index=False, name=None)
    return frame["device_class"].isin(device_classes_matching(pairs, device))


def eligible(frame: pd.DataFrame, c: Constraints) -> pd.DataFrame:
    """Rules 1 and 2: newest result per configuration, then the filters."""
    frame = frame[(frame["status"] == "done") & frame["latency_p50_ms"].notna()]
    frame = _newest_per_config(frame)
    keep = matches_device(frame, c.device) & (frame["accuracy_pass"].astype(object) != False)  # noqa: E712
    if c.max_latency_ms is not None:
        keep &= frame[c.latency_column] <= c.max_latency_ms
    if c.min_throughput is not None:
        keep &= frame["throughput"] >= c.min_throughput
    if c.max_memory_mb is not None:
        keep &= frame["memory_mb"] <= c.max_memory_mb
    if c.max_rel_error is not None:
        keep &= frame["rel_l2_error"].fillna(0.0) <= c.max_rel_error
    return frame[keep]


def _interval(frame: pd.DataFrame, objective: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(point, low, high); a row without samples has a zero-width interval."""
    if objective == "latency":
        point, lo, hi = "latency_p50_ms", "latency_p50_ci_low_ms", "latency_p50_ci_high_ms"
    else:
        point, lo, hi = "throughput", "throughput_ci_low", "throughput_ci_high"
    p = frame[point].to_numpy(dtype=float)
    return p, frame[lo].fillna(frame[point]).to_numpy(dtype=float), frame[hi].fillna(frame[point]).to_numpy(dtype=float)


def within_window(value: np.ndarray, leader: float, objective: str) -> np.ndarray:
    if objective == "latency":
        return value <= leader * (1 + TIE_WINDOW)
    return value >= leader / (1 + TIE_WINDOW)


def _device_best(group: pd.DataFrame, objective: str) -> pd.DataFrame:
    point, lo, hi = _interval(group, objective)
    lead = int(np.argmin(point) if objective == "latency" else np.argmax(point))
    tied = within_window(point, point[lead], objective) & (lo <= hi[lead]) & (lo[lead] <= hi)
    tied[lead] = True
    contenders = group[tied].assign(_point=point[tied] if objective == "latency" else -point[tied])
    contenders = contenders.sort_values(TIE_BREAK + ["_point", "job_id"], na_position="last", kind="stable")
    winner, others = contenders.iloc[:1], contenders.iloc[1:].sort_values(["_point", "job_id"])
    return pd.concat([
        winner.assign(role="winner", tied_with=[others["job_id"].tolist()]),
        others.assign(role="tied", tied_with=[[winner["job_id"].iloc[0]]] * len(others)),
    ]).drop(columns="_point")


def select_best(frame: pd.DataFrame, c: Constraints) -> pd.DataFrame:
    """Winner and tied rows per device class (BEST_FIELDS, plus hidden columns)."""
    frame = eligible(frame, c)
    if frame.empty:
        return frame.assign(role=[], tied_with=[], objective=[])
    parts = [_device_best(group, c.objective) for _, group in frame.groupby("device_class", sort=True)]
    return pd.concat(parts, ignore_index=True).assign(objective=c.objective)


def best_per_device(rows: list[dict], objective: str = "latency", max_latency_ms: float | None = None,
                    max_rel_error: float | None = None, device: str | None = None,
                    min_throughput: float | None = None, **more) -> pd.DataFrame:
    """In-memory variant over ``job_rows`` output (kept for callers holding rows)."""
    c = Constraints(objective=objective, max_latency_ms=max_latency_ms, max_rel_error=max_rel_error,
                    device=device, min_throughput=min_throughput, **more)
    return select_best(jobs_frame(rows), c)


def find_best(sweep_id: str | None = None, model: str | None = None,
              constraints: Constraints = Constraints()) -> pd.DataFrame:
    """What ``farm best``, ``fetch``, the HTML report and the dashboard use.

    A sweep is loaded whole; a model's results (possibly millions of rows)
    go through the windowed SQL scan in candidates.py first.
    """
    from farm.reports.candidates import model_candidates
    from farm.reports.rows import load_frame

    frame = load_frame(sweep_id=sweep_id) if sweep_id else model_candidates(model, constraints)
    return select_best(frame, constraints)
