"""Best configuration per device class under the user's constraints."""

from __future__ import annotations

import pandas as pd

from farm.reports.rows import jobs_frame

BEST_OBJECTIVES = ("latency", "throughput")


def _unique_configs(frame: pd.DataFrame) -> pd.DataFrame:
    """A configuration run in several sweeps appears once (newest wins)."""
    keys = ["device_class", "backend", "precision", "batch_size", "profile"]
    return frame.drop_duplicates(subset=keys, keep="last")


def best_per_device(rows: list[dict], objective: str = "latency", max_latency_ms: float | None = None,
                    max_rel_error: float | None = None, device: str | None = None,
                    min_throughput: float | None = None) -> pd.DataFrame:
    frame = jobs_frame(rows)
    frame = frame[(frame["status"] == "done") & frame["latency_p50_ms"].notna()]
    if device:
        needle = device.lower()
        match = frame["device_class"].str.lower().str.contains(needle, regex=False) | \
            frame["device"].fillna("").str.lower().str.contains(needle, regex=False)
        frame = frame[match]
    frame = frame[frame["accuracy_pass"].fillna(True).astype(bool)]
    if max_latency_ms is not None:
        frame = frame[frame["latency_p99_ms"] <= max_latency_ms]
    if max_rel_error is not None:
        frame = frame[frame["rel_l2_error"].fillna(0.0) <= max_rel_error]
    if min_throughput is not None:
        frame = frame[frame["throughput"] >= min_throughput]
    frame = _unique_configs(frame)
    if frame.empty:
        return frame
    column, ascending = ("latency_p50_ms", True) if objective == "latency" else ("throughput", False)
    ordered = frame.sort_values([column, "build_s"], ascending=[ascending, True], kind="stable")
    return ordered.groupby("device_class", sort=True).head(1).reset_index(drop=True)
