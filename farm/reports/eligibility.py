"""Which results may win: one vocabulary for ``farm best``, ``farm fetch``,
a search's feasibility, its pruning and its finals (pandas; no database).

The rule (docs/fields.md, "Eligibility"), the same per row (``violation``)
and vectorised (``eligible_mask``):

1. status ``done`` with the objective's figure measured (a p50; for the
   throughput objective a throughput; for a serving objective LoadGen's
   VALID figure, farm/reports/serving.py);
2. accuracy ``pass`` or ``reference``; ``unchecked`` (no accuracy figures,
   or int8/fp8 checked on synthetic inputs only) only with
   ``allow_unchecked``; ``fail`` never;
3. not flagged ``host_bound`` (the host's launch rate, not the device's)
   nor ``host_contended`` (measured while the host's CPUs were
   oversubscribed), unless ``allow_host_bound``;
4. every bound given (max latency at ``latency_stat``, min throughput, max
   memory, max relative error) holds, and **a bound on a figure that was not
   measured is not met** (CPU memory, a missing error): the farm never
   claims what it did not measure.

A search's final winner is decided by the same rule on the re-measured
figures (farm/search/finals.py), so it never violates a user constraint.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import pandas as pd

from farm.reports.serving import SERVING_OBJECTIVES, serving_figure

ELIGIBLE_ACCURACY = ("pass", "reference")
HOST_BOUND = "host_bound"
HOST_CONTENDED = "host_contended"
HOST_FLAGS = (HOST_BOUND, HOST_CONTENDED)  # figures of the host, not of the device
BOUND_NAMES = {"max_latency_ms": "<=", "min_throughput": ">=", "max_memory_mb": "<=", "max_rel_error": "<="}
SEARCH_KEYS = ("latency_stat", "max_latency_ms", "min_throughput", "max_memory_mb", "max_rel_error",
               "allow_unchecked", "allow_host_bound")  # what a spec's search.constraints may hold


@dataclass(frozen=True)
class Constraints:
    objective: str = "latency"
    latency_per: str = "request"  # latency objective: per request (one call) or per sample (p50 / batch)
    latency_stat: str = "p99"  # which statistic max_latency_ms bounds
    max_latency_ms: float | None = None
    min_throughput: float | None = None
    max_memory_mb: float | None = None
    max_rel_error: float | None = None
    device: str | None = None
    profile: str | None = None  # only this profile's workloads
    allow_unchecked: bool = False  # configurations without accuracy figures may win
    allow_host_bound: bool = False  # host_bound / host_contended figures may win
    p99_ms: float | None = None  # server-qps: the winning load's p99 must be within this (LoadGen VALID too)

    @classmethod
    def of_search(cls, objective: str, constraints: Mapping[str, Any] | None) -> "Constraints":
        """A search's ``objective`` and ``constraints`` block (spec ``search:``)."""
        given = {k: v for k, v in (constraints or {}).items() if k in SEARCH_KEYS}
        return cls(objective=objective, **given)

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v != _DEFAULTS[k]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "Constraints":
        return cls(**{k: v for k, v in (data or {}).items() if k in _DEFAULTS})

    @property
    def latency_column(self) -> str:
        return f"latency_{self.latency_stat}_ms"

    @property
    def lower_is_better(self) -> bool:
        return self.objective == "latency" or (self.objective in SERVING_OBJECTIVES
                                               and SERVING_OBJECTIVES[self.objective][1])

    @property
    def objective_column(self) -> str:
        """The column holding the objective's figure (serving objectives: serving_figure decides)."""
        if self.objective in SERVING_OBJECTIVES:
            return SERVING_OBJECTIVES[self.objective][0]
        return "throughput" if self.objective == "throughput" else "latency_p50_ms"

    @property
    def accuracy_allowed(self) -> tuple[str, ...]:
        return ELIGIBLE_ACCURACY + (("unchecked",) if self.allow_unchecked else ())

    @property
    def flags_refused(self) -> tuple[str, ...]:
        if self.allow_host_bound:
            return ()
        if self.objective in SERVING_OBJECTIVES and self.objective != "efficiency":
            # A served figure is the host's and the device's together by design (queueing, copies, Python):
            # host_bound speaks of the fixed-batch device timing only. A contended host spoils both.
            return (HOST_CONTENDED,)
        return HOST_FLAGS

    @property
    def unit(self) -> str:
        if self.objective in SERVING_OBJECTIVES:
            return SERVING_OBJECTIVES[self.objective][2]
        if self.objective == "throughput":
            return "samples/s"
        return "ms/sample" if self.latency_per == "sample" else "ms/request"

    def bounds(self) -> list[tuple[str, str, float]]:
        """(report column, operator, value): the constraints, defined once."""
        given = [(self.latency_column, "<=", self.max_latency_ms), ("throughput", ">=", self.min_throughput),
                 ("memory_mb", "<=", self.max_memory_mb), ("rel_l2_error", "<=", self.max_rel_error)]
        return [(column, op, value) for column, op, value in given if value is not None]

    # -- the rule, per row -------------------------------------------------
    def violation(self, row: Mapping[str, Any]) -> str | None:
        """Why a result (a report row: status, latency_p50_ms, latency_p99_ms,
        throughput, memory_mb, rel_l2_error, accuracy_status, flags, error)
        may not win, or None. Rules 1-4 of the module docstring, in order."""
        status = row.get("status")
        if status != "done":
            last = str(row.get("error") or "").strip().splitlines()[-1:]
            return f"{status}" + (f": {last[0][:160]}" if last else "")
        if _missing(row.get("latency_p50_ms")) or _missing(self._objective_of(row)):
            return "not measured" if self.objective not in SERVING_OBJECTIVES else \
                f"no valid {self.objective} figure (LoadGen INVALID or not run)"
        accuracy = accuracy_status(row)
        if accuracy not in self.accuracy_allowed:
            if accuracy == "fail":
                return "failed the accuracy gate" + deciding_figure(row)
            if str(row.get("accuracy_inputs") or "").startswith("synthetic"):
                return ("accuracy unchecked (synthetic inputs): int8/fp8 checked on synthetic inputs only, no "
                        "verdict on real data (allow_unchecked ranks it)")
            return f"accuracy {accuracy}: no accuracy verdict to rest on (allow_unchecked ranks it)"
        for flag in self.flags_refused:
            if flag in _flags(row):
                return f"flagged {flag}: the figure is the host's, not the device's (allow_host_bound ranks it)"
        for column, op, limit in self.bounds():
            value = row.get(column)
            name = _BOUND_OF[column] if column in _BOUND_OF else "max_latency_ms"
            if _missing(value):
                return f"{column} not measured, so {name} {limit:g} is not met"
            if not _OPS[op](float(value), limit):
                return f"{column} {float(value):.4g} does not meet {name} {limit:g}"
        return None

    def _objective_of(self, row: Mapping[str, Any]):
        if self.objective in SERVING_OBJECTIVES:
            return serving_figure(pd.DataFrame([dict(row)]), self.objective, self.p99_ms).iloc[0]
        return row.get(self.objective_column)

    def objective_figure(self, frame: pd.DataFrame) -> pd.Series:
        if self.objective in SERVING_OBJECTIVES:
            return serving_figure(frame, self.objective, self.p99_ms)
        return _numeric(frame, self.objective_column)

    def allows(self, row: Mapping[str, Any]) -> bool:
        return self.violation(row) is None

    # -- the rule, vectorised ----------------------------------------------
    def eligible_mask(self, frame: pd.DataFrame) -> pd.Series:
        """``violation(row) is None`` for every row of a report frame, at once."""
        if frame.empty:
            return pd.Series([], dtype=bool, index=frame.index)
        keep = (frame["status"] == "done") & _numeric(frame, "latency_p50_ms").notna()
        keep &= self.objective_figure(frame).notna()
        keep &= accuracy_statuses(frame).isin(self.accuracy_allowed)
        if self.flags_refused:
            flags = frame["flags"] if "flags" in frame else pd.Series([[]] * len(frame), index=frame.index)
            keep &= ~flags.map(lambda f: bool(set(self.flags_refused) & set(_as_list(f)))).astype(bool)
        for column, op, value in self.bounds():
            keep &= _OPS[op](_numeric(frame, column), value).fillna(False).astype(bool)
        return keep.astype(bool)


_DEFAULTS = {f.name: f.default for f in fields(Constraints)}
_BOUND_OF = {"throughput": "min_throughput", "memory_mb": "max_memory_mb", "rel_l2_error": "max_rel_error"}
_OPS = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}


def deciding_figure(row: Mapping[str, Any]) -> str:
    """The figure that decided an accuracy verdict: the task metric where one
    did (its name and value, e.g. ``edit_distance 0.0625``), else rel L2;
    the one wording of ``farm best``'s reasons and the search's prunings."""
    metric = row.get("accuracy_metric")
    if isinstance(metric, str) and metric:
        return f" ({metric})"
    error = row.get("rel_l2_error")
    return "" if _missing(error) else f" (rel L2 {error:.3g})"


def accuracy_status(row: Mapping[str, Any]) -> str:
    """The recorded status, else the verdict (pass / fail), else unchecked."""
    status = row.get("accuracy_status")
    if isinstance(status, str) and status:
        return status
    verdict = row.get("accuracy_pass")
    if verdict is None or (isinstance(verdict, float) and math.isnan(verdict)):
        return "unchecked"
    return "pass" if bool(verdict) else "fail"


def accuracy_statuses(frame: pd.DataFrame) -> pd.Series:
    status = frame["accuracy_status"] if "accuracy_status" in frame else pd.Series(None, index=frame.index)
    verdict = frame["accuracy_pass"] if "accuracy_pass" in frame else pd.Series(None, index=frame.index)
    derived = verdict.map(lambda v: "unchecked" if v is None or (isinstance(v, float) and math.isnan(v))
                          else ("pass" if bool(v) else "fail"))
    given = status.map(lambda s: isinstance(s, str) and bool(s))
    return status.where(given, derived).astype(object)


def _missing(value) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(float("nan"), index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce")


def _as_list(flags) -> list:
    return list(flags) if isinstance(flags, (list, tuple, set)) else []


def _flags(row: Mapping[str, Any]) -> list:
    return _as_list(row.get("flags"))
