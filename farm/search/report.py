"""The search part of a sweep's HTML report: the saving against brute
force, every configuration's fate (built, pruned, skipped, and why), the
best-so-far over the search's steps, the finals and the winners."""

from __future__ import annotations

from html import escape

from farm.reports import svg


def _fate_rows(summary: dict) -> str:
    rows = "".join(f'<tr><td class="t">{escape(reason.split(":", 1)[0])}</td><td>{count}</td>'
                   f'<td class="t">{escape(reason.split(": ", 1)[1] if ": " in reason else "")}</td></tr>'
                   for reason, count in sorted(summary["reasons"].items(), key=lambda kv: (-kv[1], kv[0])))
    return ('<table class="search-fates"><tr><th>what</th><th>configurations</th><th>why</th></tr>'
            f'<tr><td class="t">built</td><td>{summary["built"]}</td><td class="t">asked for by the strategy</td></tr>'
            f'<tr><td class="t">reused</td><td>{summary["reused"]}</td><td class="t">an identical job had '
            f'finished before: no build</td></tr>{rows}</table>')


def _best_so_far_chart(summary: dict) -> str:
    series: dict[str, svg.Series] = {}
    for entry in summary["history"]:
        if entry["best_so_far"] is None or entry["state"] != "built":
            continue
        group = entry["group"].split("|", 1)[0]
        line = series.setdefault(group, svg.Series(group, svg.style_for("search", group, len(series))))
        line.points.append(svg.Point(float(entry["build"]), float(entry["best_so_far"]), "",
                                     f"build {entry['build']}: {entry['best_so_far']:.4g}"))
    unit = "p50 latency (ms)" if summary["objective"] == "latency" else "throughput (samples/s)"
    return svg.chart("search-progress", "best so far when each build was decided", "build", unit,
                     list(series.values()), lines=True)


def _winners(summary: dict) -> str:
    rows = []
    for group, entry in sorted((summary.get("result") or {}).items()):
        if "winner" not in entry:
            continue
        rows.append(f'<tr><td class="t">{escape(group)}</td><td class="t">{escape(str(entry["winner"]))}</td>'
                    f'<td class="t">{escape(", ".join(entry.get("tied") or []))}</td>'
                    f'<td class="t">{escape(", ".join(entry.get("finalists") or []))}</td>'
                    f'<td class="t">{escape(entry.get("decided_by", ""))}</td></tr>')
    if not rows:
        return "<p>no winner yet</p>"
    return ('<table class="search-winners"><tr><th>device class | workload</th><th>winner</th><th>tied</th>'
            f'<th>finalists</th><th>decided by</th></tr>{"".join(rows)}</table>')


def search_section(summary: dict) -> str:
    if not summary:
        return ""
    head = (f'<h2>Search</h2><p class="search-saving"><b>{escape(summary["saving"])}</b> '
            f'({escape(summary["strategy"])} search, objective {escape(summary["objective"])}, budget '
            f'{summary["budget"]}, state {escape(summary["state"])}; {summary["pruned"]} pruned, '
            f'{summary["skipped"]} skipped)</p>')
    finals = "".join(f'<li>finals {escape(f["id"])} on {escape(f["device_class"])}: {escape(f["status"])}, '
                     f'{len(f["jobs"])} candidates interleaved on one worker</li>' for f in summary["finals"])
    return (head + _winners(summary) + (f"<ul>{finals}</ul>" if finals else "") + _fate_rows(summary)
            + f'<div class="plots">{_best_so_far_chart(summary)}</div>')
