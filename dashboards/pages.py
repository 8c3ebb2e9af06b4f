"""HTML pages of the live dashboard (server-side rendered, no scripts
except a meta refresh; plots are inline SVG from farm.reports)."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

import pandas as pd

from farm.reports import find_best, load_frame
from farm.reports.html import BEST_COLUMNS, STYLE, sections, table
from farm.service import list_sweeps

NAV = '<p><a href="/">sweeps</a> | <a href="/best">best per GPU</a></p>'


def page(title: str, body: str, refresh: int | None = None) -> str:
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8">{meta}<title>{escape(title)}</title>'
            f"<style>{STYLE}progress{{width:160px}}</style></head><body><h1>{escape(title)}</h1>{NAV}{body}"
            "</body></html>")


def sweeps_page() -> str:
    rows = []
    for s in reversed(list_sweeps()):
        counts = ", ".join(f"{n} {k}" for k, n in sorted(s["counts"].items()))
        sid = s["sweep_id"]
        rows.append(f'<tr data-sweep="{escape(sid)}"><td class="t"><a href="/sweep/{quote(sid)}">'
                    f'{escape(sid)}</a></td><td class="t">{escape(s["name"])}</td>'
                    f'<td class="t">{escape(s["model"])}</td><td class="t">{escape(s["state"])}</td>'
                    f'<td><progress value="{s["finished"]}" max="{s["total"] or 1}"></progress> '
                    f'<span class="progress">{s["finished"]}/{s["total"]}</span></td>'
                    f'<td class="t">{escape(counts)}</td>'
                    f'<td class="t">{escape(s["created_at"])}</td></tr>')
    head = "".join(f"<th>{h}</th>" for h in ("sweep", "name", "model", "state", "progress", "jobs", "created"))
    head = f"<tr>{head}</tr>"
    return page("Engine Farm sweeps", f'<table class="sweeps">{head}{"".join(rows)}</table>', refresh=10)


def _with_download(frame: pd.DataFrame) -> str:
    links = "".join(f'<li><a class="artifact" href="/artifact/{sha}">{escape(str(job))}: {sha[:16]}...</a></li>'
                    for job, sha in frame[["job_id", "artifact_sha256"]].dropna().itertuples(index=False))
    return f"<h2>Artifacts (download, sha256 verified)</h2><ul>{links}</ul>"


def sweep_page(sweep_id: str) -> str:
    frame = load_frame(sweep_id=sweep_id)
    best = find_best(sweep_id=sweep_id)
    status = next((s for s in list_sweeps() if s["sweep_id"] == sweep_id), None)
    progress = (f'<p>{escape(status["state"])}: <progress value="{status["finished"]}" max="{status["total"] or 1}">'
                f'</progress> {status["finished"]}/{status["total"]} jobs</p>') if status else ""
    return page(f"Sweep {sweep_id}", progress + sections(frame, best) + _with_download(frame), refresh=30)


def best_page() -> str:
    parts = []
    for model in sorted({s["model"] for s in list_sweeps()}):
        best = find_best(model=model)
        best = best[best["device_class"].str.startswith("gpu.") | best["device_class"].str.startswith("cpu.")]
        parts.append(f"<h2>{escape(model)}</h2>" + table(best, BEST_COLUMNS, "best"))
    return page("Best configuration per device class", "".join(parts) or "<p>no results yet</p>", refresh=30)
