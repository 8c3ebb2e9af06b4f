"""Tables, colour and number formatting for the CLI.

Tables are rich tables: on a terminal they fit its width and wrap long
cells (never truncate them); piped or redirected they are as wide as their
content, plain text with trailing spaces stripped, so scripts can split
them. Colour (FAIL in red, flags in yellow) only on a terminal and never
with NO_COLOR set (https://no-color.org).
"""

from __future__ import annotations

import io
import json
import math
import os
import sys

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from farm.reports.cells import fmt, note  # noqa: F401  (the CLI's tables read values as every report does)
from farm.terminal import say

TABLE_COLUMNS = (
    ("job", "job_id"), ("status", "status"), ("backend", "backend"), ("prec", "precision"),
    ("batch", "batch_size"), ("profile", "profile"), ("settings", "settings"), ("device", "device_class"),
    ("p50 ms", "latency_p50_ms"), ("p99 ms", "latency_p99_ms"), ("thru/s", "throughput"),
    ("inf/J", "inferences_per_joule"), ("build s", "build_s"), ("rel L2", "rel_l2_error"), ("acc", "accuracy"), ("note", "note"),
)

BEST_TABLE_COLUMNS = (
    ("device", "device_class"), ("role", "role"), ("job", "job_id"), ("backend", "backend"), ("prec", "precision"),
    ("batch", "batch_size"), ("profile", "profile"), ("settings", "settings"), ("workload", "workload"),
    ("p50 ms", "latency_p50_ms"),
    ("p50 CI low", "latency_p50_ci_low_ms"), ("p50 CI high", "latency_p50_ci_high_ms"), ("p99 ms", "latency_p99_ms"),
    ("thru/s", "throughput"), ("inf/J", "inferences_per_joule"), ("mem MB", "memory_mb"),
    ("objective", "objective_value"), ("unit", "objective_unit"), ("acc", "accuracy"), ("note", "note"),
)
# Cells whose text gets a colour on a terminal.
STYLES = {"FAIL": "bold red", "failed": "red", "slower": "bold red", "faster": "green", "pass": "green",
          "unsupported": "yellow", "cancelled": "yellow"}
LEFT = {"job_id", "status", "backend", "precision", "profile", "settings", "device_class", "note", "role", "verdict",
        "device", "worker", "name", "model", "state", "sweep_id", "jobs", "created_at", "kind", "host", "uuid",
        "current_job", "backends", "device_class_a", "device_class_b"}


def color_enabled(stream=None) -> bool:
    stream = stream or sys.stdout
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


def _terminal_width(stream) -> int | None:
    if not (hasattr(stream, "isatty") and stream.isatty()):
        return None
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return int(os.environ.get("COLUMNS", 100))


def _cell(key: str, value, color: bool) -> Text:
    text = fmt(value)
    # "FAIL (iou 0.748)": the verdict's colour, whatever metric follows it
    style = STYLES.get(text, STYLES.get(text.split(" (", 1)[0], "")) if color else ""
    if color and key in ("note", "flags") and text:
        style = "yellow"
    return Text(text, style=style)


def render_table(headers: list[str], keys: list[str], rows: list[dict], stream=None) -> str:
    """The text of a table for ``stream`` (stdout by default)."""
    stream = stream or sys.stdout
    color, width = color_enabled(stream), _terminal_width(stream)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold" if color else "",
                  safe_box=True)
    for header, key in zip(headers, keys):
        table.add_column(header, justify="left" if key in LEFT else "right", overflow="fold")
    for row in rows:
        table.add_row(*[_cell(key, row.get(key), color) for key in keys])
    buffer = io.StringIO()
    probe = Console(file=io.StringIO(), width=100_000, color_system=None)
    console = Console(file=buffer, width=width or probe.measure(table).maximum, highlight=False,
                      color_system="standard" if color else None, force_terminal=color, no_color=not color,
                      legacy_windows=False)
    console.print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def accuracy(row: dict) -> str | None:
    """accuracy_status as the tables show it: pass, FAIL, unchecked, reference; ``unchecked
    (synthetic inputs)`` where the figures came from synthetic inputs only (issue 22)."""
    status = row.get("accuracy_status")
    if status is None and row.get("accuracy_pass") is not None:
        status = "pass" if row["accuracy_pass"] else "fail"
    if status == "unchecked" and str(row.get("accuracy_inputs") or "").startswith("synthetic"):
        return "unchecked (synthetic inputs)"
    shown = "FAIL" if status == "fail" else status
    # A task metric decided the verdict: name it and its value (the rel L2 column did not decide).
    metric = row.get("accuracy_metric")
    if status in ("pass", "fail") and isinstance(metric, str) and metric:
        return f"{shown} ({metric})"
    return shown


def table(rows: list[dict], columns=TABLE_COLUMNS, stream=None) -> str:
    rows = [{**row, "note": note(row), "accuracy": accuracy(row)} for row in rows]
    # The settings column (streams, serving knobs, varying build knobs) only where some row has settings.
    if not any(row.get("settings") for row in rows):
        columns = [c for c in columns if c[1] != "settings"]
    return render_table([h for h, _ in columns], [k for _, k in columns], rows, stream)


def emit(text: str, output=None) -> None:
    """Text to FILE (atomically, saying so on stderr) or to stdout."""
    import click

    from farm.output_files import write_output

    if output:
        write_output(output, text if text.endswith("\n") else text + "\n")
        say(f"wrote {output}", err=True)
    else:
        click.echo(text)


def emit_export(data, fields, fmt_name: str, output=None) -> bool:
    """``data`` (rows or a frame) over ``fields`` as parquet, csv or json,
    to FILE or stdout: True when ``fmt_name`` is one of those, else False
    (the command renders its own table or page)."""
    import click

    from farm.reports.export import to_text, write_parquet

    if fmt_name == "parquet":
        write_parquet(data, fields, output)
        say(f"wrote {output}", err=True)
        return True
    if fmt_name in ("csv", "json"):
        emit(to_text(data, fields, fmt_name), output)
        return True
    return False


def table_stream(output=None):
    """Tables written to a file get no colour and no terminal width."""
    return io.StringIO() if output else None


def to_json(data) -> str:
    return json.dumps(data, indent=2, default=str, allow_nan=False)


def clean(value):
    """NaN -> None so JSON stays valid."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
