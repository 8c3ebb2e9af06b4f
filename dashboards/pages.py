"""HTML pages of the live dashboard, server-side rendered from the same
functions as the HTML report (farm.reports.html).

Live pages put their content in ``<main id="live">``; /live.js (a small
same-origin script, no inline code) fetches ``?fragment=1`` of the same URL
every few seconds and swaps that content in place when it changed, so
nothing reloads and the scroll position stays. Without JavaScript the page
is still complete, only static.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from urllib.parse import quote, urlencode

import pandas as pd

from farm.reports import find_best, load_frame
from farm.reports.best import rank
from farm.reports.compare import parse_prices
from farm.reports.html import BEST_COLUMNS, STYLE, table, view_sections
from farm.reports.views import VIEWS, canonical_view
from farm.service import device_rows, list_sweeps

NAV = ('<nav><a href="/">sweeps</a> <a href="/best">best per GPU</a> <a href="/workers">workers</a> '
       '<a href="/compare">compare sweeps</a></nav>')
REFRESH_S = 5
LIVE_JS = """(function () {
  var main = document.getElementById("live");
  if (!main || !window.fetch) { return; }
  var every = parseInt(main.getAttribute("data-refresh") || "5", 10) * 1000;
  var last = null;
  function tick() {
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    fetch(url.toString(), {cache: "no-store"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && html !== last) {
          main.innerHTML = html;
          last = html;
          main.setAttribute("data-updated", new Date().toISOString());
        }
      })
      .catch(function () {})
      .then(function () { window.setTimeout(tick, every); });
  }
  window.setTimeout(tick, every);
})();
"""


@dataclass
class Page:
    title: str
    body: str
    live: bool = False

    def html(self) -> str:
        content = (f'<main id="live" data-refresh="{REFRESH_S}">{self.body}</main>'
                   '<script src="/live.js" defer></script>') if self.live else f"<main>{self.body}</main>"
        return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(self.title)}</title>'
                f"<style>{STYLE}progress{{width:160px}}.dead{{color:#888}}</style></head><body>"
                f"<h1>{escape(self.title)}</h1>{NAV}{content}</body></html>")


def page(title: str, body: str) -> str:
    return Page(title, body).html()


def sweeps_page() -> Page:
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
    return Page("Engine Farm sweeps", f'<table class="sweeps"><tr>{head}</tr>{"".join(rows)}</table>', live=True)


def _with_download(frame: pd.DataFrame) -> str:
    links = "".join(f'<li><a class="artifact" href="/artifact/{sha}">{escape(str(job))}: {sha[:16]}...</a></li>'
                    for job, sha in frame[["job_id", "artifact_sha256"]].dropna().itertuples(index=False))
    return f"<h2>Artifacts (download, sha256 verified)</h2><ul>{links}</ul>"


def _view_links(sweep_id: str, view: str, prices: list[str]) -> str:
    links = []
    for name in VIEWS:
        query = urlencode([("view", name)] + [("price", p) for p in prices if name == "cross-device"])
        current = ' class="current"' if name == view else ""
        links.append(f'<a{current} href="/sweep/{quote(sweep_id)}?{escape(query)}">{name}</a>')
    return f'<p class="views">views: {" | ".join(links)}</p>'


def sweep_page(sweep_id: str, view: str = "jobs", prices: list[str] | None = None) -> Page:
    prices = prices or []
    view = canonical_view(view)  # ?view=compare, the old name of speedup, still works
    if view not in VIEWS:
        from farm.errors import UserError

        raise UserError(f"unknown view {view!r}; one of {', '.join(VIEWS)}")
    frame = load_frame(sweep_id=sweep_id)
    best = rank(frame)  # find_best(sweep_id=...) on the frame already loaded (loading is most of the time)
    status = next((s for s in list_sweeps() if s["sweep_id"] == sweep_id), None)
    progress = (f'<p class="sweep-progress">{escape(status["state"])}: <progress value="{status["finished"]}" '
                f'max="{status["total"] or 1}"></progress> <span class="progress">{status["finished"]}/'
                f'{status["total"]}</span> jobs</p>') if status else ""
    price_form = ""
    if view == "cross-device":
        price_form = ('<form method="get"><input type="hidden" name="view" value="cross-device">'
                      '<label>price per device-hour <input name="price" size="40" '
                      'placeholder="gpu.nvidia-h100-80gb-hbm3=3.5"></label> <button>apply</button></form>')
    body = (_view_links(sweep_id, view, prices) + price_form + progress
            + view_sections(view, sweep_id, frame, best, parse_prices(prices))
            + (_with_download(frame) if view == "jobs" else ""))
    return Page(f"Sweep {sweep_id}" + ("" if view == "jobs" else f" ({view})"), body, live=True)


def best_page() -> Page:
    parts = []
    for model in sorted({s["model"] for s in list_sweeps()}):
        best = find_best(model=model)
        best = best[best["device_class"].str.startswith("gpu.") | best["device_class"].str.startswith("cpu.")]
        parts.append(f"<h2>{escape(model)}</h2>" + table(best, BEST_COLUMNS, "best"))
    return Page("Best configuration per device class", "".join(parts) or "<p>no results yet</p>", live=True)


WORKER_COLUMNS = (("worker", "worker"), ("state", "state"), ("device class", "device_class"), ("device", "name"),
                  ("host", "host"), ("uuid", "uuid"), ("current job", "current_job"),
                  ("last heartbeat", "last_heartbeat"), ("heartbeat age s", "heartbeat_age_s"),
                  ("backends", "backends"), ("driver", "driver_version"))


def workers_page() -> Page:
    from farm.config import stale_s

    rows = device_rows()
    frame = pd.DataFrame(rows, columns=[k for _, k in WORKER_COLUMNS if k != "state"] + ["live"])
    frame["state"] = [_worker_state(live, worker, beat) for live, worker, beat in
                      zip(frame["live"], frame["worker"], frame["last_heartbeat"])]
    frame["last_heartbeat"] = [b if isinstance(b, str) else ("never" if pd.notna(w) else None)
                               for b, w in zip(frame["last_heartbeat"], frame["worker"])]
    frame["job_id"] = frame["worker"]
    live = int(frame["live"].sum()) if len(frame) else 0
    stale = int(frame["state"].str.startswith("stale").sum()) if len(frame) else 0
    # A stale worker holds its device but has not beaten within the liveness window: it is probably
    # dead (its jobs go back to the queue), so it is counted apart, never as live.
    body = (f'<p class="worker-count">{live} live workers, {stale} stale (no heartbeat within '
            f'{stale_s():g} s), on {len(frame)} registered devices</p>'
            + table(frame.sort_values(["live", "host", "device_class"], ascending=[False, True, True]),
                    WORKER_COLUMNS, "workers"))
    return Page("Workers", body, live=True)


def _worker_state(live: bool, worker, last_heartbeat) -> str:
    if live:
        return "live"
    if pd.isna(worker):
        return "no worker"
    return "stale (never beat)" if not isinstance(last_heartbeat, str) else "stale"


def compare_page(sweep_a: str | None, sweep_b: str | None, min_change: float = 10.0) -> Page:
    sweeps = list_sweeps()
    def options(chosen):
        return "".join(f'<option value="{escape(s["sweep_id"])}"{" selected" if s["sweep_id"] == chosen else ""}>'
                       f'{escape(s["sweep_id"])} {escape(s["name"])} ({escape(s["created_at"])})</option>'
                       for s in reversed(sweeps))

    # Unchosen, A and B default to two different sweeps: the one before the newest, and the newest.
    newest = [sw["sweep_id"] for sw in reversed(sweeps)]
    default_b = sweep_b or (newest[0] if newest else None)
    default_a = sweep_a or next((sid for sid in newest if sid != default_b), None)
    form = (f'<form method="get"><label>A <select name="a">{options(default_a)}</select></label> '
            f'<label>B <select name="b">{options(default_b)}</select></label> <button>compare</button></form>')
    if not (sweep_a and sweep_b):
        return Page("Compare sweeps", form + "<p>Pick sweep A (before) and sweep B (after).</p>")
    from farm.reports.compare_html import sweep_compare_body
    from farm.reports.sweep_compare import compare_sweeps

    body = sweep_compare_body(compare_sweeps(sweep_a, sweep_b, min_change_pct=min_change))
    return Page(f"{sweep_b} against {sweep_a}", form + body, live=True)
