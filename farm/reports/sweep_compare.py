"""Sweep against sweep (``farm compare A B``): a new model version, a new
TensorRT, another GPU.

Configurations are matched on (backend, precision, batch size, profile,
device class); when each sweep ran on one device class and they differ
(another GPU), on the same keys without the device class.

Per matched pair: ratio = p50 latency of B / p50 latency of A (> 1: B is
slower), with a 95 % bootstrap interval of that ratio from both sweeps'
raw samples (independent resamples of each side's median; confidence.py's
exact shortcut). Verdict:

- ``slower``: the whole interval lies above 1 + ``min_change_pct`` / 100:
  B is significantly slower by more than the noise floor;
- ``faster``: the whole interval lies below 1 / (1 + ``min_change_pct`` / 100);
- ``tied``: otherwise. Repeats of one sweep on one machine differ from run
  to run (other load, clocks) by more than one run's samples can show, so a
  change is only called when it clears ``min_change_pct`` (default 10) with
  confidence;
- ``only in A`` / ``only in B`` / ``not measured`` (failed, unsupported).

A regression for ``--fail-on-regression PCT`` is a ``slower`` pair whose
slow-down exceeds PCT percent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import select

from farm.db import Measurement, session_scope
from farm.reports.confidence import LEVEL, SEED, bootstrap_medians
from farm.reports.rows import load_frame

KEYS = ["backend", "precision", "batch_size", "profile"]
SWEEP_COMPARE_FIELDS = (
    "backend", "precision", "batch_size", "profile", "device_class_a", "device_class_b", "job_id_a", "job_id_b",
    "latency_p50_ms_a", "latency_p50_ms_b", "ratio", "ratio_ci_low", "ratio_ci_high", "change_pct",
    "throughput_a", "throughput_b", "throughput_ratio", "accuracy_pass_a", "accuracy_pass_b", "verdict",
)
MEASURED = ("slower", "faster", "tied")


@dataclass
class SweepComparison:
    sweep_a: str
    sweep_b: str
    rows: pd.DataFrame  # SWEEP_COMPARE_FIELDS
    across_devices: bool  # matched without the device class (one class each, different)
    min_change_pct: float

    def regressions(self, pct: float) -> pd.DataFrame:
        rows = self.rows
        return rows[(rows["verdict"] == "slower") & (rows["change_pct"] > pct)]

    def counts(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.rows["verdict"].value_counts().sort_index().items()}


def _samples(measurement_ids) -> dict[int, list[float]]:
    ids = [int(i) for i in measurement_ids if i == i and i is not None]
    with session_scope() as session:
        rows = session.execute(select(Measurement.id, Measurement.samples_ms).where(Measurement.id.in_(ids)))
        return {mid: samples or [] for mid, samples in rows}


def _side(sweep_id: str) -> pd.DataFrame:
    frame = load_frame(sweep_id=sweep_id)
    frame = frame.sort_values("seq", kind="stable").drop_duplicates(KEYS + ["device_class"], keep="last")
    return frame


def _ratio_interval(a: list[float], b: list[float], level: float) -> tuple[float, float]:
    if not a or not b:
        return float("nan"), float("nan")
    ratios = bootstrap_medians(b, seed=SEED + 1) / bootstrap_medians(a, seed=SEED)
    low, high = np.quantile(ratios, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(low), float(high)


def _true(value) -> bool:
    return not pd.isna(value) and bool(value)


def _verdict(row, min_change: float) -> str:
    if row["side"] != "both":
        return "only in A" if row["side"] == "left_only" else "only in B"
    if not (_true(row["measured_a"]) and _true(row["measured_b"])):
        return "not measured"
    band = 1 + min_change / 100
    if row["ratio_ci_low"] > band:
        return "slower"
    if row["ratio_ci_high"] < 1 / band:
        return "faster"
    return "tied"


def compare_sweeps(sweep_a: str, sweep_b: str, min_change_pct: float = 10.0, level: float = LEVEL) -> SweepComparison:
    a, b = _side(sweep_a), _side(sweep_b)
    classes_a, classes_b = set(a["device_class"]), set(b["device_class"])
    across = len(classes_a) == 1 and len(classes_b) == 1 and classes_a != classes_b
    keys = KEYS if across else KEYS + ["device_class"]
    for side in (a, b):
        side["measured"] = (side["status"] == "done") & side["latency_p50_ms"].notna()
        side["device_class_copy"] = side["device_class"]
    columns = ["job_id", "measurement_id", "latency_p50_ms", "throughput", "accuracy_pass", "measured",
               "device_class_copy"]
    merged = a[keys + columns].merge(b[keys + columns], on=keys, how="outer", suffixes=("_a", "_b"), indicator="side")
    merged = merged.rename(columns={"device_class_copy_a": "device_class_a", "device_class_copy_b": "device_class_b"})
    samples = _samples(list(merged["measurement_id_a"].dropna()) + list(merged["measurement_id_b"].dropna()))
    lows, highs = [], []
    for r in merged.itertuples():
        both = r.side == "both" and _true(r.measured_a) and _true(r.measured_b)
        low, high = _ratio_interval(samples.get(int(r.measurement_id_a), []) if both else [],
                                    samples.get(int(r.measurement_id_b), []) if both else [], level)
        lows.append(low)
        highs.append(high)
    merged["ratio"] = merged["latency_p50_ms_b"] / merged["latency_p50_ms_a"]
    merged["ratio_ci_low"], merged["ratio_ci_high"] = lows, highs
    merged["change_pct"] = (merged["ratio"] - 1) * 100
    merged["throughput_ratio"] = merged["throughput_b"] / merged["throughput_a"]
    merged["verdict"] = [_verdict(row, min_change_pct) for _, row in merged.iterrows()]
    merged = merged.sort_values(KEYS, kind="stable").reset_index(drop=True)
    return SweepComparison(sweep_a, sweep_b, merged[list(SWEEP_COMPARE_FIELDS)], across, min_change_pct)
