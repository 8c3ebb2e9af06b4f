"""The accuracy verdict over every evaluation sample.

A job's outputs are compared with the fp32 reference batch by batch over
the evaluation rows (farm.input_data.split_rows); this module turns those
batches into the stored ``accuracy`` record:

- per output, the pooled figures over all samples (rel. L2 of the stacked
  outputs, cosine, max abs error): what the default gate judges, as before
  but over every sample instead of one batch;
- per output, the per-sample rel. L2 (stored, up to MAX_STORED_SAMPLES),
  its mean and 95th percentile, each with a 95 % bootstrap interval;
- per declared task metric (``accuracy.metrics``, farm.task_metrics), the
  per-sample values, their statistic (mean by default) with an interval,
  and its bound; a declared metric replaces the default gate on its output;
- the provenance of the inputs (``inputs``: synthetic or the user's data,
  which rows, how many, the calibration rows) and the status: ``pass``,
  ``fail``, ``reference``, or ``unchecked`` with ``reason`` "synthetic
  inputs" for a calibrated precision checked on synthetic inputs.
"""

from __future__ import annotations

import math

import numpy as np

from farm.accuracy import CALIBRATED, SYNTHETIC_REASON, tolerances
from farm.task_metrics import (DEFAULT_BOUNDS, HIGHER_IS_BETTER, is_user_metric, metric_params,
                               per_sample)

MAX_STORED_SAMPLES = 4096  # per-sample figures kept per output and metric
PERCENTILE = 95
BOOTSTRAP = 1000


def _leading_batch(reference: dict) -> int | None:
    leading = {np.shape(v)[0] for v in reference.values() if np.ndim(v) > 0}
    return leading.pop() if len(leading) == 1 else None


class _Pool:
    """Running sums for the pooled rel. L2 / cosine / max abs of one output."""

    def __init__(self):
        self.dd = self.ee = self.aa = self.ae = 0.0
        self.max_abs = 0.0
        self.exact = []  # mismatch fractions of non-numeric outputs
        self.nonfinite = False

    def add(self, actual, expected) -> None:
        if np.asarray(expected).dtype.kind in "USOa" or np.asarray(actual).dtype.kind in "USOa":
            a, e = np.asarray(actual).ravel(), np.asarray(expected).ravel()
            self.exact.append(float(np.mean(a != e)) if a.size else 0.0)
            return
        a = np.asarray(actual, dtype=np.float64).ravel()
        e = np.asarray(expected, dtype=np.float64).ravel()
        if a.shape != e.shape:
            raise ValueError(f"output shapes differ: {np.shape(actual)} vs {np.shape(expected)}")
        if a.size == 0:
            return
        diff = a - e
        self.nonfinite |= not bool(np.isfinite(diff).all())
        self.dd += float(np.dot(diff, diff))
        self.ee += float(np.dot(e, e))
        self.aa += float(np.dot(a, a))
        self.ae += float(np.dot(a, e))
        self.max_abs = max(self.max_abs, float(np.max(np.abs(diff))))

    def figures(self) -> dict[str, float]:
        if self.exact:
            wrong = float(np.mean(self.exact))
            return {"max_abs_error": 1.0 if wrong else 0.0, "rel_l2_error": wrong, "cosine": 1.0 - wrong}
        if self.nonfinite:
            return {"max_abs_error": math.inf, "rel_l2_error": math.inf, "cosine": -1.0}
        diff = math.sqrt(self.dd)
        denom = math.sqrt(self.aa) * math.sqrt(self.ee)
        cosine = self.ae / denom if denom > 0 else (1.0 if diff == 0 else 0.0)
        rel = diff / math.sqrt(self.ee) if self.ee > 0 else diff
        return {"max_abs_error": self.max_abs, "rel_l2_error": rel, "cosine": cosine}


def _statistic(values: np.ndarray, statistic: str, quantile: float | None) -> float:
    if statistic == "quantile":
        return float(np.quantile(values, quantile if quantile is not None else 0.95))
    return float({"mean": np.mean, "median": np.median, "max": np.max, "min": np.min}[statistic](values))


def interval(values, statistic: str = "mean", quantile: float | None = None) -> list[float]:
    """95 % percentile-bootstrap interval of ``statistic`` (fixed seed: reproducible)."""
    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data)]
    if data.size == 0:
        return [math.nan, math.nan]
    if data.size == 1 or np.all(data == data[0]):
        value = float(data[0])
        return [value, value]
    rng = np.random.default_rng(0)
    picks = rng.integers(0, data.size, size=(BOOTSTRAP, data.size))
    stats = _statistics(data[picks], statistic, quantile)  # one row per resample, all at once
    return [float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))]


def _statistics(rows: np.ndarray, statistic: str, quantile: float | None) -> np.ndarray:
    """``_statistic`` of every row of a 2-D array (vectorised: a loop over 1,000
    resamples cost 13-95 ms per interval, on every job's accuracy check)."""
    if statistic == "quantile":
        return np.quantile(rows, quantile if quantile is not None else 0.95, axis=1)
    return {"mean": np.mean, "median": np.median, "max": np.max, "min": np.min}[statistic](rows, axis=1)


def summary(values, statistic: str = "mean", quantile: float | None = None) -> dict:
    data = np.asarray(values, dtype=np.float64)
    finite = data[np.isfinite(data)]
    if finite.size < data.size:  # a NaN/inf sample decides alone
        worst = math.inf
        return {"value": worst, "ci": [worst, worst], "mean": worst, "p95": worst, "count": int(data.size)}
    return {
        "value": _statistic(data, statistic, quantile), "ci": interval(data, statistic, quantile),
        "mean": float(data.mean()), "p95": float(np.percentile(data, PERCENTILE)), "count": int(data.size),
    }


def _slice(value, batch: int | None, valid: int | None):
    """The valid samples of a batched output (the last batch may be filled up with repeated rows)."""
    if batch is None or valid is None or np.ndim(value) == 0 or np.shape(value)[0] != batch:
        return value
    return np.asarray(value)[:valid]


def _entries(accuracy_cfg: dict, outputs: list[str]) -> dict[str, list[dict]]:
    metrics: dict[str, list[dict]] = {}
    for entry in accuracy_cfg.get("metrics") or []:
        targets = outputs if entry.get("output") in (None, "*") else [entry["output"]]
        for name in targets:
            metrics.setdefault(name, []).append(entry)
    return metrics


def _bound(entry: dict) -> tuple[str, float | None]:
    name = entry["metric"]
    if entry.get("min") is not None:
        return "min", float(entry["min"])
    if entry.get("max") is not None:
        return "max", float(entry["max"])
    if is_user_metric(name):
        return "min", None
    return DEFAULT_BOUNDS[name]


def evaluate(outputs: dict, reference: dict, precision: str, accuracy_cfg: dict,
             reference_job: bool = False, inputs: dict | None = None) -> dict:
    """One batch's outputs against the reference (``evaluate_batches`` for many)."""
    return evaluate_batches([(outputs, reference, None)], precision, accuracy_cfg, reference_job, inputs)


def evaluate_batches(batches, precision: str, accuracy_cfg: dict, reference_job: bool = False,
                     inputs: dict | None = None) -> dict:
    """``batches``: (outputs, reference, valid) per evaluation batch, ``valid``
    the number of real samples in it (None: all). See the module doc."""
    names: list[str] = []
    declared: dict[str, list[dict]] = {}
    pools: dict[str, _Pool] = {}
    samples: dict[str, dict[str, list[float]]] = {}
    for outputs, reference, valid in batches:  # streamed: one batch's outputs in memory at a time
        if not names:
            names = list(reference)
            declared = _entries(accuracy_cfg, names)
            pools = {name: _Pool() for name in names}
            samples = {name: {"rel_l2": []} for name in names}
        batch = _leading_batch(reference)
        for name, expected in reference.items():
            if name not in outputs:
                raise ValueError(f"output {name!r} missing from the backend's results")
            actual, expected = _slice(outputs[name], batch, valid), _slice(expected, batch, valid)
            pools[name].add(actual, expected)
            rows = valid if batch is not None and valid is not None else batch
            if np.asarray(expected).dtype.kind not in "USOa":
                samples[name]["rel_l2"] += per_sample("rel_l2", actual, expected, rows or 0)
            for entry in declared.get(name, []):
                key = _metric_key(entry)
                samples[name].setdefault(key, []).extend(
                    per_sample(entry["metric"], actual, expected, rows or 0, **metric_params(entry)))
    per_output, failures = {}, []
    limits = tolerances(precision, accuracy_cfg)
    for name in names:
        figures = pools[name].figures()
        record = {**figures, "samples": len(samples[name]["rel_l2"]) or None}
        if samples[name]["rel_l2"]:
            rel = summary(samples[name]["rel_l2"])
            record["rel_l2_mean"], record["rel_l2_mean_ci"] = rel["mean"], rel["ci"]
            record["rel_l2_p95"], record["rel_l2_p95_ci"] = rel["p95"], interval(
                samples[name]["rel_l2"], "quantile", PERCENTILE / 100)
        record["metrics"] = [_judge(entry, samples[name][_metric_key(entry)], name, failures)
                             for entry in declared.get(name, [])]
        record["gate"] = "metrics" if declared.get(name) else "default"
        if not declared.get(name):
            failures.extend(_default_failures(name, figures, limits))
        record["per_sample"] = {k: [_rounded(v) for v in vals[:MAX_STORED_SAMPLES]]
                                for k, vals in samples[name].items()}
        per_output[name] = record
    return _verdict(per_output, failures, limits, precision, accuracy_cfg, reference_job, inputs)


def _metric_key(entry: dict) -> str:
    extra = "".join(f",{k}={entry[k]}" for k in ("k", "threshold", "atol", "rtol", "error_stat", "blank")
                    if entry.get(k) is not None)
    return entry["metric"] + extra


def _rounded(value: float) -> float:
    return float(f"{value:.6g}") if math.isfinite(value) else value


def _judge(entry: dict, values: list[float], output: str, failures: list[str]) -> dict:
    statistic = entry.get("statistic") or "mean"
    result = summary(values, statistic, entry.get("quantile"))
    side, bound = _bound(entry)
    value = result["value"]
    passed = True
    if bound is not None:
        passed = (value >= bound) if side == "min" else (value <= bound)
        passed = passed and math.isfinite(value)
    if not passed:
        op = "<" if side == "min" else ">"
        failures.append(f"{output}: {_metric_key(entry)} {statistic} {value:.4g} {op} {bound:.4g}")
    better = "higher" if HIGHER_IS_BETTER.get(entry["metric"], side == "min") else "lower"
    return {"metric": _metric_key(entry), "statistic": statistic, "value": value, "ci": result["ci"],
            "mean": result["mean"], "p95": result["p95"], "samples": result["count"],
            side: bound, "better": better, "passed": passed}


def _default_failures(name: str, figures: dict, limits: dict) -> list[str]:
    out = []
    if limits["max_rel_error"] is not None and not figures["rel_l2_error"] <= limits["max_rel_error"]:
        out.append(f"{name}: rel_l2_error {figures['rel_l2_error']:.3g} > {limits['max_rel_error']:.3g}")
    if limits["max_abs_error"] is not None and not figures["max_abs_error"] <= limits["max_abs_error"]:
        out.append(f"{name}: max_abs_error {figures['max_abs_error']:.3g} > {limits['max_abs_error']:.3g}")
    if limits["min_cosine"] is not None and not figures["cosine"] >= limits["min_cosine"]:
        out.append(f"{name}: cosine {figures['cosine']:.6f} < {limits['min_cosine']}")
    return out


def _verdict(per_output: dict, failures: list[str], limits: dict, precision: str, accuracy_cfg: dict,
             reference_job: bool, inputs: dict | None) -> dict:
    values = per_output.values()
    worst = {
        "max_abs_error": max((m["max_abs_error"] for m in values), default=0.0),
        "rel_l2_error": max((m["rel_l2_error"] for m in values), default=0.0),
        "cosine": min((m["cosine"] for m in values), default=1.0),
    }
    inputs = inputs or {"source": "synthetic"}
    record = {**worst, "failures": failures, "tolerances": limits, "per_output": per_output, "inputs": inputs,
              "inputs_summary": inputs_summary(inputs), "metric_summary": None}
    if reference_job:
        return {**record, "passed": None, "status": "reference"}
    if inputs.get("source") == "synthetic" and precision in CALIBRATED and not accuracy_cfg.get("synthetic_ok"):
        return {**record, "passed": None, "status": "unchecked", "reason": SYNTHETIC_REASON}
    return {**record, "passed": not failures, "status": "fail" if failures else "pass",
            "metric_summary": metric_summary(per_output, failures)}  # only a verdict has a deciding metric


def metric_summary(per_output: dict, failures: list[str]) -> str | None:
    """The task metric that decides the verdict, short, for tables: ``iou 0.748``
    (its name without parameters, its aggregated value; ``+N`` more metrics).
    Failing metrics decide a failure; none when only the default gate (rel.
    L2 / cosine, shown in its own column) failed or no metric was declared."""
    judged = [m for record in per_output.values() for m in record.get("metrics") or []]
    failing = [m for m in judged if not m.get("passed")]
    deciding = failing or ([] if failures else judged)
    if not deciding:
        return None
    first = deciding[0]
    value = first.get("value")
    text = f"{str(first['metric']).split(',')[0]} {value:.3g}" if isinstance(value, (int, float)) else \
        f"{str(first['metric']).split(',')[0]} {value}"
    return (text + (f" +{len(deciding) - 1}" if len(deciding) > 1 else ""))[:64]


def inputs_summary(inputs: dict | None) -> str | None:
    """One short line for tables: ``data rows 24-47 (24)``, ``synthetic (4)``."""
    if not inputs:
        return None
    count = inputs.get("count")
    if inputs.get("source") == "data" and inputs.get("rows"):
        start, stop = inputs["rows"]
        text = f"data rows {start}-{stop - 1} ({count})"
        return text + (", overlaps calibration" if inputs.get("overlap") else "")
    return f"{inputs.get('source', 'synthetic')} ({count})" if count else inputs.get("source", "synthetic")
