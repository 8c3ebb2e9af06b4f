"""The report's charts from report frames (HTML report and dashboard).

A series is one (backend, precision, profile); its style comes from
svg.style_for, so a configuration group looks the same on every chart. Per
device class the configurations are numbered once (backend, precision,
profile, batch order); scatter charts label points with those numbers and
the key under each chart spells them out ("3  tensorrt fp16 b8 p640 ...").
"""

from __future__ import annotations

from html import escape

import pandas as pd

from farm.reports import svg

GROUP = ["backend", "precision", "profile"]


def passed_gate(value) -> bool:
    """No verdict counts as not failed (as in farm best)."""
    return bool(pd.isna(value)) or bool(value)


def group_name(r) -> str:
    return f"{r.backend} {r.precision} {r.profile}"


def config_name(r) -> str:
    """How rows are named (tables' settings column, summary, progress): backend, precision,
    batch, profile, then the ``settings`` that tell apart rows equal in those."""
    get = r.get if hasattr(r, "get") else lambda key, default=None: getattr(r, key, default)
    settings = get("settings", None)
    settings = f" {settings}" if isinstance(settings, str) and settings else ""
    return f"{get('backend')} {get('precision')} b{int(get('batch_size'))} {get('profile')}{settings}"


def job_streams(config: dict | None) -> int | None:
    """A job's measurement streams (1 where its config leaves them at the default)."""
    if not isinstance(config, dict):
        return None
    return int((config.get("measure") or {}).get("streams", 1))


def settings_label(config: dict | None, knobs=None) -> str:
    """The axes of a job config beyond backend/precision/batch/profile: ``s<streams>`` (when not 1),
    ``d<queue delay>us x<instances>`` (served jobs), then build knobs ``name=value`` (``knobs``: the
    names to show, e.g. those that vary within a sweep; None: every knob the job sets)."""
    if not isinstance(config, dict):
        return ""
    parts = []
    streams = job_streams(config)
    if streams != 1:
        parts.append(f"s{streams}")
    serving = config.get("serving") or {}
    if serving:
        parts.append(f"d{serving.get('queue_delay_us', 0)}us x{serving.get('instances', 1)}")
    build = config.get("build") or {}
    if isinstance(build, dict):
        parts.extend(f"{k}={build[k]}" for k in sorted(build) if knobs is None or k in knobs)
    return " ".join(parts)


def varying_knobs(configs) -> set[str]:
    """Build knob names whose values differ between the job configs (a sweep's or search's knob axes)."""
    seen: dict[str, set] = {}
    builds = [(c.get("build") or {}) if isinstance(c, dict) else {} for c in configs]
    for build in builds:
        for key in (build if isinstance(build, dict) else {}):
            seen.setdefault(key, set())
    for build in builds:
        for key in seen:
            seen[key].add(repr(build.get(key)) if isinstance(build, dict) else None)
    return {k for k, values in seen.items() if len(values) > 1}


def styles(frame: pd.DataFrame) -> dict[tuple, svg.Style]:
    """(backend, precision, profile) -> style; profiles dashed in name order."""
    profiles = sorted({str(p) for p in frame["profile"]}) if len(frame) else []
    return {(b, p, prof): svg.style_for(str(b), str(p), profiles.index(str(prof)))
            for b, p, prof in frame[GROUP].drop_duplicates().itertuples(index=False)}


def numbered(group: pd.DataFrame) -> pd.DataFrame:
    """One device class's configurations in key order, with ``number``."""
    ordered = group.sort_values(GROUP + ["batch_size", "job_id"], kind="stable").copy()
    ordered["number"] = range(1, len(ordered) + 1)
    return ordered


def workload_column(frame: pd.DataFrame) -> str:
    """What makes results comparable: the ranking's workload (model + input
    shapes) when the frame has one, else the shape profile."""
    return "workload" if "workload" in frame.columns else "profile"


def pareto(frame: pd.DataFrame) -> pd.DataFrame:
    """Per workload, the gate-passing configurations no other gate-passing
    one beats on both lower p50 latency and higher throughput, in latency
    order (throughput over different input shapes is not comparable)."""
    ok = frame[frame["accuracy_pass"].map(passed_gate).astype(bool) & frame["throughput"].notna()]
    parts = []
    for _, group in ok.groupby(workload_column(ok), sort=True):
        ordered = group.sort_values(["latency_p50_ms", "throughput"], ascending=[True, False], kind="stable")
        best, keep = float("-inf"), []
        for value in ordered["throughput"]:
            keep.append(value > best)
            best = max(best, value)
        parts.append(ordered[keep])
    return pd.concat(parts) if parts else ok.iloc[:0]


def _series(group: pd.DataFrame, style_map: dict, x: str, y: str) -> list[svg.Series]:
    out: dict[tuple, svg.Series] = {}
    # Only the columns a point reads: itertuples over the report's ~60 columns was most of a big sweep's plots.
    needed = list(dict.fromkeys([x, y, "backend", "precision", "profile", "batch_size", "job_id", "number",
                                 "accuracy_pass"]))
    for r in group.loc[group[x].notna() & group[y].notna(), needed].itertuples():
        key = (r.backend, r.precision, r.profile)
        series = out.setdefault(key, svg.Series(group_name(r), style_map[key]))
        series.points.append(svg.Point(float(getattr(r, x)), float(getattr(r, y)), str(r.job_id),
                                       f"{r.number}: {config_name(r)}: {getattr(r, y):.4g}",
                                       passed_gate(r.accuracy_pass), int(r.number)))
    return list(out.values())


def key_list(group: pd.DataFrame, front_jobs: set[str]) -> str:
    items = []
    for r in group.itertuples():
        notes = (["Pareto front"] if r.job_id in front_jobs else []) + \
            ([] if passed_gate(r.accuracy_pass) else ["failed accuracy gate"])
        thr = f", {r.throughput:.4g}/s" if r.throughput == r.throughput else ""
        items.append(f'<li value="{r.number}" data-job="{escape(str(r.job_id))}" '
                     f'class="{"fail" if not passed_gate(r.accuracy_pass) else ""}">'
                     f'<b>{r.number}</b> {escape(config_name(r))}: p50 {r.latency_p50_ms:.4g} ms{thr}'
                     f'{"".join(f" <i>({escape(n)})</i>" for n in notes)}</li>')
    return f'<ol class="key">{"".join(items)}</ol>'


def figure(chart: str, device: str, key: str = "") -> str:
    return f'<figure class="chart" data-device="{escape(device)}">{chart}{key}</figure>'


def device_figures(device: str, group: pd.DataFrame, style_map: dict) -> list[str]:
    group = numbered(group)
    front = pareto(group)
    front_jobs = set(front["job_id"])
    key = key_list(group, front_jobs)
    charts = [
        figure(svg.chart("latency-vs-batch", f"p50 latency vs batch: {device}", "batch size", "p50 latency (ms)",
                         _series(group, style_map, "batch_size", "latency_p50_ms"), lines=True, discrete_x=True),
               device),
    ]
    fronts = [sorted((p for s in _series(part, style_map, "latency_p50_ms", "throughput") for p in s.points),
                     key=lambda p: p.x) for _, part in front.groupby(workload_column(front), sort=True)]
    charts.append(figure(svg.chart("pareto", f"throughput vs latency: {device}", "p50 latency (ms)",
                                   "throughput (samples/s)", _series(group, style_map, "latency_p50_ms", "throughput"),
                                   fronts=fronts), device, key))
    bars = [{"label": f"{r.number} {config_name(r)}", "value": float(r.build_s), "job": r.job_id,
             "style": style_map[(r.backend, r.precision, r.profile)], "series": group_name(r),
             "passed": passed_gate(r.accuracy_pass)} for r in group[group["build_s"].notna()].itertuples()]
    charts.append(figure(svg.bar_chart("build-time", f"build time (s): {device}", "seconds", bars), device))
    charts.append(figure(svg.chart("accuracy-vs-speed", f"accuracy vs speed: {device}", "p50 latency (ms)",
                                   "relative L2 error vs reference",
                                   _series(group, style_map, "latency_p50_ms", "rel_l2_error")), device, key))
    return charts


def sweep_figures(done: pd.DataFrame) -> list[str]:
    style_map = styles(done)
    return [f for device, group in done.groupby("device_class", sort=True)
            for f in device_figures(str(device), group, style_map)]


def compare_figures(compared: pd.DataFrame) -> list[str]:
    """Throughput gain and p50 speed-up against the baseline, per device."""
    style_map, out = styles(compared), []
    for device, group in compared.groupby("device_class", sort=True):
        group = numbered(group)
        for column, kind, title in (("throughput_gain", "throughput-gain", "throughput gain vs baseline (x)"),
                                    ("speedup", "latency-speedup", "p50 latency speed-up vs baseline (x)")):
            bars = [{"label": f"{r.number} {config_name(r)}", "value": float(getattr(r, column)), "job": r.job_id,
                     "style": style_map[(r.backend, r.precision, r.profile)], "series": group_name(r),
                     "passed": passed_gate(r.accuracy_pass)}
                    for r in group[group[column].notna()].itertuples()]
            out.append(figure(svg.bar_chart(kind, f"{title}: {device}", "x (1 = baseline)", bars), str(device)))
    return out


def cross_figures(cross: pd.DataFrame) -> list[str]:
    """Per configuration group, each device's throughput and (priced)
    cost per million inferences."""
    style_map = styles(cross)
    rows = cross.sort_values(GROUP + ["batch_size", "device_class"], kind="stable")
    out = []
    for column, kind, title, unit in (("cost_per_million", "cost-per-million", "cost per million inferences",
                                       "price units per 1M samples"),
                                      ("throughput", "cross-throughput", "throughput by device", "samples/s")):
        bars = [{"label": f"{config_name(r)} @ {r.device_class}", "value": float(getattr(r, column)),
                 "job": r.job_id, "style": style_map[(r.backend, r.precision, r.profile)], "series": group_name(r),
                 "passed": passed_gate(r.accuracy_pass)} for r in rows[rows[column].notna()].itertuples()]
        if bars:
            out.append(figure(svg.bar_chart(kind, title, unit, bars), "all"))
    return out
