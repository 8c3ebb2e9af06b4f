"""Self-contained HTML report of a sweep: inline SVG plots and tables,
no scripts, no external resources (opens offline). The dashboard reuses
``sections`` for its sweep page."""

from __future__ import annotations

from html import escape

import pandas as pd

from farm.cli.output import fmt
from farm.reports import svg
from farm.reports.compare import comparison
from farm.reports.layers import layer_section

STYLE = """body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 24px}
td,th{border:1px solid #ccc;padding:3px 7px;font-size:12px;text-align:right}th{background:#eee}
td.t{text-align:left}.plots{display:flex;flex-wrap:wrap;gap:12px}h2{margin-top:28px}.fail{color:#b00}"""
BEST_COLUMNS = (("device", "device_class"), ("role", "role"), ("job", "job_id"), ("backend", "backend"),
                ("prec", "precision"), ("batch", "batch_size"), ("profile", "profile"),
                ("p50 ms", "latency_p50_ms"), ("p50 CI low", "latency_p50_ci_low_ms"),
                ("p50 CI high", "latency_p50_ci_high_ms"), ("p99 ms", "latency_p99_ms"),
                ("thru/s", "throughput"), ("memory MB", "memory_mb"), ("accuracy", "accuracy_pass"))
COMPARE_COLUMNS = (("device", "device_class"), ("job", "job_id"), ("backend", "backend"), ("prec", "precision"),
                   ("batch", "batch_size"), ("profile", "profile"), ("p50 ms", "latency_p50_ms"),
                   ("p99 ms", "latency_p99_ms"), ("e2e p50 ms", "e2e_latency_p50_ms"), ("thru/s", "throughput"),
                   ("speed-up", "speedup"), ("build s", "build_s"), ("artifact B", "artifact_size"),
                   ("rel L2", "rel_l2_error"), ("cosine", "cosine"), ("accuracy", "accuracy_pass"),
                   ("flags", "flags"))


def _cell(value) -> str:
    if isinstance(value, list):
        return escape(", ".join(map(str, value)))
    text = escape(fmt(value))
    return f'<span class="fail">{text}</span>' if text == "FAIL" else text


def table(frame: pd.DataFrame, columns, css: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h, _ in columns)
    body = []
    for record in frame.to_dict("records"):
        cells = []
        for _, key in columns:
            value = record.get(key)
            value = None if isinstance(value, float) and value != value else value
            kind = "t" if isinstance(value, (str, list)) else "n"
            cells.append(f'<td class="{kind}" data-field="{key}">{_cell(value)}</td>')
        body.append(f'<tr data-job="{escape(str(record.get("job_id", "")))}">{"".join(cells)}</tr>')
    return f'<table class="{css}"><tr>{head}</tr>{"".join(body)}</table>'


def _label(r) -> str:
    return f"{r.backend} {r.precision} b{r.batch_size} {r.profile}: p50 {r.latency_p50_ms:.4g} ms"


def _points(frame: pd.DataFrame, x: str, y: str) -> list[dict]:
    rows = frame[frame[x].notna() & frame[y].notna()]
    return [{"x": float(getattr(r, x)), "y": float(getattr(r, y)), "job": r.job_id, "label": _label(r),
             "shape": "circle" if r.accuracy_pass is not False else "cross"} for r in rows.itertuples()]


def pareto(frame: pd.DataFrame) -> pd.DataFrame:
    """Configurations no other beats on both lower p50 and higher throughput."""
    ordered = frame.sort_values(["latency_p50_ms", "throughput"], ascending=[True, False])
    best, keep = -1.0, []
    for r in ordered.itertuples():
        keep.append(r.throughput > best)
        best = max(best, r.throughput)
    return ordered[keep]


def plots(done: pd.DataFrame) -> list[str]:
    charts = []
    for device, group in done.groupby("device_class", sort=True):
        series = {f"{b} {p}": _points(g, "batch_size", "latency_p50_ms")
                  for (b, p), g in group.groupby(["backend", "precision"], sort=True)}
        charts.append(svg.line_chart("latency-vs-batch", f"p50 latency vs batch: {device}", "batch size",
                                     "p50 latency (ms)", series))
        front = _points(pareto(group), "latency_p50_ms", "throughput")
        charts.append(svg.line_chart("pareto", f"throughput vs latency (Pareto front dashed): {device}",
                                     "p50 latency (ms)", "throughput (samples/s)",
                                     {device: _points(group, "latency_p50_ms", "throughput")}, lines=False,
                                     front=sorted(front, key=lambda p: p["x"])))
        bars = [{"label": f"{r.backend} {r.precision} b{r.batch_size} {r.profile}"[:34], "value": float(r.build_s),
                 "job": r.job_id} for r in group[group["build_s"].notna()].itertuples()]
        charts.append(svg.bar_chart("build-time", f"build time (s): {device}", "seconds", bars))
    accuracy = {d: _points(g, "latency_p50_ms", "rel_l2_error") for d, g in done.groupby("device_class")}
    charts.append(svg.line_chart("accuracy-vs-speed", "accuracy vs speed (x: failed gate)", "p50 latency (ms)",
                                 "relative L2 error", accuracy, lines=False))
    return charts


def sections(frame: pd.DataFrame, best: pd.DataFrame) -> str:
    done = frame[(frame["status"] == "done") & frame["latency_p50_ms"].notna()]
    compared = comparison(frame)
    return "".join([
        "<h2>Best per device class</h2>", table(best, BEST_COLUMNS, "best"),
        "<h2>Plots</h2>", '<div class="plots">', "".join(plots(done)), "</div>",
        "<h2>Comparison (speed-up vs fp32 batch 1 of the same backend)</h2>",
        table(compared, COMPARE_COLUMNS, "compare"),
        layer_section(best),
    ])


def report_html(sweep_id: str, frame: pd.DataFrame, best: pd.DataFrame) -> str:
    model = escape(str(frame["model"].iloc[0])) if len(frame) else ""
    counts = ", ".join(f"{n} {s}" for s, n in frame["status"].value_counts().sort_index().items())
    from farm.search.driver import search_summary
    from farm.search.report import search_section

    search = search_section(search_summary(sweep_id))
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Engine Farm sweep {escape(sweep_id)}</title>'
            f"<style>{STYLE}</style></head><body><h1>Sweep {escape(sweep_id)}</h1>"
            f'<p>model <b>{model}</b>; {len(frame)} jobs ({escape(counts)})</p>{search}{sections(frame, best)}'
            "</body></html>")
