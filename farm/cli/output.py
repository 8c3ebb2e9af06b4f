"""Plain-text tables and number formatting for the CLI."""

from __future__ import annotations

import json
import math

TABLE_COLUMNS = (
    ("job", "job_id"), ("status", "status"), ("backend", "backend"), ("prec", "precision"),
    ("batch", "batch_size"), ("profile", "profile"), ("device", "device_class"),
    ("p50 ms", "latency_p50_ms"), ("p99 ms", "latency_p99_ms"), ("thru/s", "throughput"),
    ("build s", "build_s"), ("rel L2", "rel_l2_error"), ("acc", "accuracy_pass"), ("note", "note"),
)

BEST_TABLE_COLUMNS = (
    ("device", "device_class"), ("role", "role"), ("job", "job_id"), ("backend", "backend"), ("prec", "precision"),
    ("batch", "batch_size"), ("profile", "profile"), ("p50 ms", "latency_p50_ms"),
    ("p50 CI low", "latency_p50_ci_low_ms"), ("p50 CI high", "latency_p50_ci_high_ms"), ("p99 ms", "latency_p99_ms"),
    ("thru/s", "throughput"), ("mem MB", "memory_mb"), ("acc", "accuracy_pass"), ("note", "note"),
)


def fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "pass" if value else "FAIL"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:.1f}"
        if abs(value) >= 0.01:
            return f"{value:.3f}"
        return f"{value:.2e}"
    return str(value)


def note(row: dict) -> str:
    parts = []
    if row.get("reused"):
        parts.append("reused")
    parts.extend(row.get("flags") or [])
    if row.get("status") in ("failed", "unsupported") and row.get("error"):
        parts.append(row["error"].strip().splitlines()[-1][:70])
    return ", ".join(parts)


def table(rows: list[dict], columns=TABLE_COLUMNS) -> str:
    cells = [[h for h, _ in columns]]
    for row in rows:
        row = {**row, "note": note(row)}
        cells.append([fmt(row.get(key)) for _, key in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def to_json(data) -> str:
    return json.dumps(data, indent=2, default=str, allow_nan=False)


def clean(value):
    """NaN -> None so JSON stays valid."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
