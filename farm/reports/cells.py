"""How one value or one row's note reads, in every table the farm prints
(CLI tables, HTML reports, the dashboard): one place, so a figure reads the
same everywhere."""

from __future__ import annotations

import math

from farm.terminal import printable


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
    if isinstance(value, list):
        return printable(", ".join(map(str, value)))
    return printable(str(value))


def note(row: dict) -> str:
    """Reuse, flags and (for failed jobs) the whole last line of the error."""
    parts = []
    if row.get("reused"):
        parts.append("reused")
    parts.extend(row.get("flags") or [])
    if row.get("status") in ("failed", "unsupported") and row.get("error"):
        lines = row["error"].strip().splitlines()
        parts.append(lines[-1] if lines else "")
    return ", ".join(p for p in parts if p)
