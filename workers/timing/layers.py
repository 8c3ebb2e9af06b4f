"""The per-layer profile table, one format for every backend (trtexec's
``--dumpProfile --separateProfileRun``; torch.profiler's kernel table).

A backend collects, per layer (or kernel), its time in each profiled
iteration; this turns that into rows sorted by median time, with each
row's share of the summed medians, plus what the backend knows about the
layer (type, tactic, precision). Stored as the job's ``layer-profile``
JSON artifact.
"""

from __future__ import annotations

import statistics
from typing import Any

KIND = "layer-profile"
TOP_ROWS = 400  # rows kept in the artifact; the rest are summed into one "(other)" row


def layer_table(per_iteration: dict[str, list[float]], details: dict[str, dict] | None = None, *,
                source: str, iterations: int, settings: dict | None = None) -> dict[str, Any]:
    """``per_iteration``: layer -> its time (ms) in each profiled iteration, in
    the order layers ran (dict order is kept for ties)."""
    details = details or {}
    rows = []
    for order, (name, times) in enumerate(per_iteration.items()):
        if not times:
            continue
        rows.append({"name": name, "order": order, "median_ms": float(statistics.median(times)),
                     "mean_ms": float(statistics.fmean(times)), "calls": len(times), **details.get(name, {})})
    total = sum(r["median_ms"] for r in rows)
    for row in rows:
        row["share"] = row["median_ms"] / total if total > 0 else 0.0
    rows.sort(key=lambda r: (-r["median_ms"], r["order"]))
    if len(rows) > TOP_ROWS:
        rest = rows[TOP_ROWS:]
        rows = rows[:TOP_ROWS] + [{"name": f"(other {len(rest)} layers)", "order": len(per_iteration),
                                   "median_ms": sum(r["median_ms"] for r in rest),
                                   "mean_ms": sum(r["mean_ms"] for r in rest), "calls": None,
                                   "share": sum(r["share"] for r in rest)}]
    return {"source": source, "iterations": iterations, "total_median_ms": total, "layers": rows,
            "settings": settings or {}}
