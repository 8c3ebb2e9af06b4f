"""Comparison views over report rows: per device class with speed-up
against a baseline, and the same configuration across devices with cost.

Baseline of a row: the fp32, batch-1 row of the same device class,
backend and workload (model + profile shapes); a row whose workload has
none gets no speed-up (other workloads compute other things).
speedup = baseline p50 / p50 (latency, >1 is faster);
throughput_gain = throughput / baseline throughput.
Cost: price per device-hour / (3600 * throughput) * 1e6 = cost per
million inferences (samples), for device classes with a --price.
"""

from __future__ import annotations

import math

import pandas as pd

from farm.errors import UserError

COMPARE_FIELDS = (
    "device_class", "backend", "precision", "batch_size", "profile", "job_id", "latency_p50_ms",
    "latency_p50_ci_low_ms", "latency_p50_ci_high_ms", "latency_p99_ms", "throughput", "e2e_latency_p50_ms",
    "e2e_latency_p99_ms", "build_s", "artifact_size", "memory_mb", "rel_l2_error", "cosine", "accuracy_pass",
    "flags", "baseline_job_id", "speedup", "throughput_gain", "workload", "accuracy_status",
    # fix26: what tells rows of one backend/precision/batch/profile apart (rows.py)
    "settings",
)
CROSS_FIELDS = ("backend", "precision", "batch_size", "profile", "device_class", "job_id", "latency_p50_ms",
                "latency_p99_ms", "throughput", "accuracy_pass", "price_per_hour", "cost_per_million",
                # issue 26: at the sustained Server load (scenarios), and energy
                "server_qps", "server_p99_ms", "cost_per_million_served", "inferences_per_joule",
                # issue 24: the verdict as every other view shows it (pass, fail, unchecked, reference)
                "accuracy_status",
                # fix26: what tells rows of one backend/precision/batch/profile apart (rows.py)
                "settings")


def parse_prices(values) -> dict[str, float]:
    """``gpu.nvidia-h100=3.5`` (repeatable) -> {device_class: price per hour}."""
    prices = {}
    for value in values or ():
        name, sep, price = value.partition("=")
        number = _price(price)
        if not sep or not name.strip() or number is None:
            raise UserError(f"--price wants DEVICE_CLASS=PRICE_PER_HOUR with a finite price of at least 0 (e.g. "
                            f"gpu.nvidia-h100=3.5), got {value!r}")
        prices[name.strip()] = number
    return prices


def _price(text: str) -> float | None:
    """A price per hour: a finite number, not negative (nan and inf made
    every cost nan or inf and ranked nothing)."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _baseline_ids(frame: pd.DataFrame) -> pd.Series:
    base = frame[(frame["precision"] == "fp32") & (frame["batch_size"] == 1)]
    exact = {(r.device_class, r.backend, r.workload): r.job_id for r in base.itertuples()}
    return pd.Series([exact.get((r.device_class, r.backend, r.workload)) for r in frame.itertuples()],
                     index=frame.index, dtype=object)


def comparison(frame: pd.DataFrame) -> pd.DataFrame:
    """Finished configurations with speed-up vs their baseline, ordered by
    device class then p50."""
    done = frame[(frame["status"] == "done") & frame["latency_p50_ms"].notna()].copy()
    done["baseline_job_id"] = _baseline_ids(done)
    by_id = done.set_index("job_id")
    base_p50 = done["baseline_job_id"].map(by_id["latency_p50_ms"])
    base_thr = done["baseline_job_id"].map(by_id["throughput"])
    done["speedup"] = (base_p50 / done["latency_p50_ms"]).astype(float)
    done["throughput_gain"] = (done["throughput"] / base_thr).astype(float)
    if "settings" not in done:
        done["settings"] = None
    done = done.sort_values(["device_class", "latency_p50_ms"], kind="stable")
    return done[list(COMPARE_FIELDS)].reset_index(drop=True)


def cross_device(frame: pd.DataFrame, prices: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per (configuration, device class), grouped by configuration."""
    prices = prices or {}
    unknown = sorted(set(prices) - set(frame["device_class"]))
    if unknown:
        raise UserError(f"--price names device classes without results: {', '.join(unknown)}")
    done = frame[(frame["status"] == "done") & frame["latency_p50_ms"].notna()].copy()
    done["price_per_hour"] = done["device_class"].map(prices).astype(float)
    done["cost_per_million"] = done["price_per_hour"] / (3600.0 * done["throughput"]) * 1e6
    # At the highest load LoadGen judged VALID under the p99 bound: what serving a million requests costs.
    served = pd.to_numeric(done["server_qps"], errors="coerce") if "server_qps" in done else float("nan")
    done["cost_per_million_served"] = done["price_per_hour"] / (3600.0 * served) * 1e6
    for column in ("server_qps", "server_p99_ms", "inferences_per_joule", "settings"):
        if column not in done:
            done[column] = None
    done["_settings"] = done["settings"].fillna("").astype(str)
    done = done.sort_values(["backend", "precision", "batch_size", "profile", "_settings", "latency_p50_ms"],
                            kind="stable")
    return done[list(CROSS_FIELDS)].reset_index(drop=True)
