"""The serving part of the HTML report and the dashboard: per device class,
p99 latency against the offered Server load (every LoadGen run of every
configuration, one line each) with the p99 bound drawn, and the table of
each configuration's scenario figures. Empty when no job ran scenarios."""

from __future__ import annotations

import pandas as pd

from farm.reports import svg
from farm.scenarios import load_curve

BOUND_STYLE = svg.Style("#888888", "circle", "4 3")
COLUMNS = (("device", "device_class"), ("job", "job_id"), ("backend", "backend"), ("prec", "precision"),
           ("max batch", "batch_size"), ("queue delay us", "queue_delay_us"), ("instances", "instances"),
           ("SingleStream p90 ms", "single_stream_p90_ms"), ("MultiStream p99 ms", "multi_stream_p99_ms"),
           ("Offline samples/s", "offline_samples_per_s"), ("Server QPS (valid)", "server_qps"),
           ("p99 at it ms", "server_p99_ms"), ("p99 bound ms", "server_p99_bound_ms"),
           ("inferences/J", "inferences_per_joule"), ("verdicts", "scenarios_validity"))


def _name(r: dict) -> str:
    return (f"{r['backend']} {r['precision']} b{int(r['batch_size'])} d{r.get('queue_delay_us') or 0}us "
            f"x{r.get('instances') or 1}")


def curve_chart(device_class: str, rows: list[dict]) -> str:
    series, bounds, xs = [], set(), []
    for index, r in enumerate(rows):
        curve = load_curve(r.get("serving"))
        points = [p for p in curve if p["target_qps"] is not None and p["p99_ms"] is not None]
        if not points:
            continue
        style = svg.style_for(r["backend"], r["precision"], index)
        s = svg.Series(_name(r), style)
        for p in points:
            verdict = "VALID" if p["valid"] else "INVALID"
            s.points.append(svg.Point(float(p["target_qps"]), float(p["p99_ms"]), str(r["job_id"]),
                                      f"{_name(r)}: {p['target_qps']:.4g} QPS offered, p99 {p['p99_ms']:.4g} ms, "
                                      f"{verdict}", passed=p["valid"]))
            xs.append(float(p["target_qps"]))
        series.append(s)
        bound = ((r.get("serving") or {}).get("scenarios") or {}).get("server", {}).get("p99_bound_ms")
        if bound:
            bounds.add(float(bound))
    for bound in sorted(bounds):
        line = svg.Series(f"p99 bound {bound:g} ms", BOUND_STYLE)
        line.points = [svg.Point(min(xs), bound, "", f"p99 bound {bound:g} ms"),
                       svg.Point(max(xs), bound, "", f"p99 bound {bound:g} ms")]
        series.append(line)
    if not xs:
        return ""
    chart = svg.chart(f"serving-{device_class}", f"{device_class}: p99 vs offered load (LoadGen Server)",
                      "offered load (QPS)", "p99 latency (ms)", series, lines=True)
    # The chart marks a failed point hollow with a cross and calls it the accuracy gate; here it is LoadGen's verdict.
    chart = chart.replace("the accuracy gate", "LoadGen: INVALID")
    return f'<figure class="chart">{chart}</figure>'


def serving_section(frame: pd.DataFrame, table) -> str:
    """``table(frame, columns, css)`` is the page's table renderer (farm.reports.html)."""
    if "serving" not in frame:
        return ""
    ran = frame[frame["serving"].map(lambda s: isinstance(s, dict))]
    if ran.empty:
        return ""
    figures = [curve_chart(device_class, group.to_dict("records"))
               for device_class, group in ran.groupby("device_class", sort=True)]
    return "".join([
        "<h2>Serving scenarios (MLPerf LoadGen over the farm's batching server)</h2>",
        "<p>Each line: one configuration's Server runs, p99 latency at each offered load; hollow marks "
        "with a cross are runs LoadGen judged INVALID (over the bound, too few queries, or early stopping "
        "unmet). The dashed grey line is the p99 bound. Figures in the table are shown only for VALID "
        "runs (docs/scenarios.md).</p>",
        f'<div class="plots">{"".join(f for f in figures if f)}</div>',
        table(ran, COLUMNS, "serving"),
    ])
