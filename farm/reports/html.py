"""Self-contained HTML report of a sweep: the summary first, then inline
SVG plots and tables; no scripts, no external resources (opens offline).
Each ``--view`` (jobs, speedup, cross-device: farm.reports.views) is its own page; the
dashboard serves the same views through ``view_sections``."""

from __future__ import annotations

from html import escape

import pandas as pd

from farm.reports.cells import fmt, note
from farm.reports import plots
from farm.reports.compare import comparison, cross_device
from farm.reports.summary import summaries, summary_html
from farm.reports.layers import layer_section
from farm.reports.serving_section import serving_section
from farm.reports.views import VIEWS, canonical_view  # noqa: F401  (VIEWS: the dashboard's import)

STYLE = """body{font-family:sans-serif;margin:24px;color:#222;max-width:1500px}
table{border-collapse:collapse;margin:8px 0 24px}
td,th{border:1px solid #ccc;padding:3px 7px;font-size:12px;text-align:right;vertical-align:top}th{background:#eee}
td.t{text-align:left;max-width:420px;overflow-wrap:break-word}.plots{display:flex;flex-wrap:wrap;gap:14px}
figure.chart{margin:0;border:1px solid #ddd;padding:6px;background:#fff}
ol.key{font-size:12px;margin:4px 0 0;padding-left:0;list-style:none;columns:2;max-width:620px}
ol.key li{margin:1px 0}ol.key li.fail{color:#b00}
h2{margin-top:28px}.fail{color:#b00;font-weight:bold}.good{color:#1a7f37;font-weight:bold}
.summary p.verdict{font-size:15px;line-height:1.5;max-width:1100px;background:#f4f8ff;
border-left:4px solid #1f5fa8;padding:6px 10px}nav a{margin-right:10px}"""
BEST_COLUMNS = (("device", "device_class"), ("role", "role"), ("job", "job_id"), ("backend", "backend"),
                ("prec", "precision"), ("batch", "batch_size"), ("profile", "profile"),
                ("p50 ms", "latency_p50_ms"), ("p50 CI low", "latency_p50_ci_low_ms"),
                ("p50 CI high", "latency_p50_ci_high_ms"), ("p99 ms", "latency_p99_ms"),
                ("thru/s", "throughput"), ("inferences/J", "inferences_per_joule"), ("memory MB", "memory_mb"),
                ("accuracy", "accuracy_status"), ("inputs", "accuracy_inputs"),
                ("workload", "workload"), ("objective", "objective_value"), ("unit", "objective_unit"),
                ("flags", "flags"))
COMPARE_COLUMNS = (("device", "device_class"), ("job", "job_id"), ("backend", "backend"), ("prec", "precision"),
                   ("batch", "batch_size"), ("profile", "profile"), ("p50 ms", "latency_p50_ms"),
                   ("p99 ms", "latency_p99_ms"), ("e2e p50 ms", "e2e_latency_p50_ms"), ("thru/s", "throughput"),
                   ("throughput gain x", "throughput_gain"), ("p50 speed-up x", "speedup"),
                   ("baseline", "baseline_job_id"), ("build s", "build_s"), ("artifact B", "artifact_size"),
                   ("rel L2", "rel_l2_error"), ("cosine", "cosine"), ("accuracy", "accuracy_status"), ("inputs", "accuracy_inputs"),
                   ("flags", "flags"))
CROSS_COLUMNS = (("backend", "backend"), ("prec", "precision"), ("batch", "batch_size"), ("profile", "profile"),
                 ("device", "device_class"), ("job", "job_id"), ("p50 ms", "latency_p50_ms"),
                 ("p99 ms", "latency_p99_ms"), ("thru/s", "throughput"), ("accuracy", "accuracy_status"), ("inputs", "accuracy_inputs"),
                 ("price/h", "price_per_hour"), ("cost per 1M inferences", "cost_per_million"),
                 ("Server QPS (valid)", "server_qps"), ("cost per 1M served", "cost_per_million_served"),
                 ("inferences/J", "inferences_per_joule"))
FRONT_COLUMNS = (("device", "device_class"), ("job", "job_id"), ("backend", "backend"), ("prec", "precision"),
                 ("batch", "batch_size"), ("profile", "profile"), ("p50 ms", "latency_p50_ms"),
                 ("thru/s", "throughput"), ("accuracy", "accuracy_status"), ("inputs", "accuracy_inputs"))
JOB_COLUMNS = (("job", "job_id"), ("status", "status"), ("backend", "backend"), ("prec", "precision"),
               ("batch", "batch_size"), ("profile", "profile"), ("device", "device_class"),
               ("p50 ms", "latency_p50_ms"), ("p99 ms", "latency_p99_ms"), ("thru/s", "throughput"),
               ("inferences/J", "inferences_per_joule"), ("samples", "samples"), ("build s", "build_s"), ("rel L2", "rel_l2_error"),
               ("accuracy", "accuracy_status"), ("inputs", "accuracy_inputs"), ("note", "note"))
INTEGER_COLUMNS = {"batch_size", "samples", "artifact_size"}


def _cell(key: str, value) -> str:
    if key in INTEGER_COLUMNS and isinstance(value, float) and value.is_integer():
        value = int(value)
    text = escape("FAIL" if key == "accuracy_status" and value == "fail" else fmt(value))
    if text in ("FAIL", "slower", "faster"):
        return f'<span class="{"fail" if text != "faster" else "good"}">{text}</span>'
    return text


def table(frame: pd.DataFrame, columns, css: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h, _ in columns)
    body = []
    # Only the columns the table shows (and what a note reads): to_dict over every column of a
    # 2,000-job frame was a second of a big report.
    wanted = [k for _, k in columns] + ["job_id"] + (["reused", "flags", "status", "error"]
                                                     if any(k == "note" for _, k in columns) else [])
    frame = frame[[c for c in dict.fromkeys(wanted) if c in frame.columns]]
    for record in frame.to_dict("records"):
        if any(key == "note" for _, key in columns):
            record["note"] = note(record)
        cells = []
        for _, key in columns:
            value = record.get(key)
            value = None if isinstance(value, float) and value != value else value
            kind = "t" if isinstance(value, (str, list)) else "n"
            cells.append(f'<td class="{kind}" data-field="{key}">{_cell(key, value)}</td>')
        body.append(f'<tr data-job="{escape(str(record.get("job_id", "")))}">{"".join(cells)}</tr>')
    return f'<table class="{css}"><tr>{head}</tr>{"".join(body)}</table>'


def _done(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["status"] == "done") & frame["latency_p50_ms"].notna()]


def _fronts(done: pd.DataFrame) -> pd.DataFrame:
    parts = [plots.pareto(g) for _, g in done.groupby("device_class", sort=True)]
    return pd.concat(parts) if parts else done.iloc[:0]


def _search(sweep_id: str) -> str:
    """The search section (after the summary) of a sweep run as a search."""
    if not sweep_id:
        return ""
    from farm.search.summary import search_summary
    from farm.search.report import search_section

    return search_section(search_summary(sweep_id))


def _plots(figures: list[str]) -> str:
    return f'<div class="plots">{"".join(figures)}</div>' if figures else "<p>nothing measured yet</p>"


def view_sections(view: str, sweep_id: str, frame: pd.DataFrame, best: pd.DataFrame,
                  prices: dict[str, float] | None = None) -> str:
    """The body of one view: the summary, then that view's plots and tables."""
    compared = comparison(frame)
    head = summary_html(summaries(sweep_id, frame, best, compared)) + _search(sweep_id)
    view = canonical_view(view)
    if view == "speedup":
        return "".join([head, "<h2>Speed-up against fp32 batch 1 of the same backend and device</h2>",
                        "<p>throughput gain = throughput / baseline throughput; p50 speed-up = baseline p50 / p50 "
                        "(both &gt; 1 is better).</p>", _plots(plots.compare_figures(compared)),
                        table(compared, COMPARE_COLUMNS, "compare")])
    if view == "cross-device":
        cross = cross_device(frame, prices)
        hint = "" if prices else ("<p>No prices given: add <code>--price DEVICE_CLASS=PRICE_PER_HOUR</code> "
                                  "for the cost per million inferences.</p>")
        return "".join([head, "<h2>Each configuration on every device</h2>", hint,
                        "<p>cost per 1M inferences = price per device-hour / (3600 x throughput) x 10<sup>6</sup>; "
                        "cost per 1M served = the same at the sustained Server load (the highest QPS LoadGen "
                        "judged VALID under the p99 bound)</p>", _plots(plots.cross_figures(cross)), table(cross, CROSS_COLUMNS, "cross-device")])
    done = _done(frame)
    return "".join([
        head, "<h2>Best per device class</h2>", table(best, BEST_COLUMNS, "best"),
        "<h2>Plots</h2>", _plots(plots.sweep_figures(done)),
        serving_section(done, table),
        "<h2>Pareto front per workload (configurations passing the accuracy gate)</h2>",
        table(_fronts(done), FRONT_COLUMNS, "pareto-front"),
        "<h2>Comparison (speed-up vs fp32 batch 1 of the same backend)</h2>",
        table(compared, COMPARE_COLUMNS, "compare"),
        layer_section(best),
        "<h2>All jobs</h2>", table(frame, JOB_COLUMNS, "jobs"),
    ])


def sections(frame: pd.DataFrame, best: pd.DataFrame, sweep_id: str = "") -> str:
    """The jobs view's body (kept for callers of the old name)."""
    return view_sections("jobs", sweep_id, frame, best)


def page(title: str, body: str, head: str = "") -> str:
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(title)}</title>{head}'
            f"<style>{STYLE}</style></head><body>{body}</body></html>")


def report_html(sweep_id: str, frame: pd.DataFrame, best: pd.DataFrame, view: str = "jobs",
                prices: dict[str, float] | None = None) -> str:
    model = escape(str(frame["model"].iloc[0])) if len(frame) else ""
    counts = ", ".join(f"{n} {s}" for s, n in frame["status"].value_counts().sort_index().items())
    title = f"Engine Farm sweep {sweep_id}" + ("" if view == "jobs" else f" ({view})")
    body = (f"<h1>Sweep {escape(sweep_id)}{'' if view == 'jobs' else ': ' + escape(view)}</h1>"
            f'<p>model <b>{model}</b>; {len(frame)} jobs ({escape(counts)})</p>'
            + view_sections(view, sweep_id, frame, best, prices))
    return page(title, body)
