"""The dashboard and HTML report tell what the CLI tells (issue 24,
finding 5): accuracy FAIL in the cross-device view, stale workers counted
as stale, the compare page's A and B two different sweeps, and a
build-time chart with axis values whose every text fits the canvas."""

from __future__ import annotations

import re
from datetime import timedelta

from seeding import SWEEP


def _cells(html: str, job_id: str, table: str) -> dict[str, str]:
    section = re.search(rf'<table class="{table}">(.*?)</table>', html, re.S).group(1)
    row = re.search(rf'<tr data-job="{job_id}">(.*?)</tr>', section, re.S).group(1)
    return {field: re.sub(r"<[^>]+>", "", text) for field, text in re.findall(
        r'data-field="(\w+)">(.*?)</td>', row, re.S)}


def test_cross_device_view_shows_fail_where_the_cli_does(known):
    from dashboards.pages import sweep_page
    from farm.reports import find_best, load_frame
    from farm.reports.html import report_html

    dashboard = sweep_page(SWEEP, "cross-device").body
    frame = load_frame(sweep_id=SWEEP)
    report = report_html(SWEEP, frame, find_best(sweep_id=SWEEP), "cross-device", {})
    for html in (dashboard, report):
        assert _cells(html, "j-int8-b1", "cross-device")["accuracy_status"] == "FAIL"  # accuracy_pass False
        assert _cells(html, "j-fp16-b1", "cross-device")["accuracy_status"] == "pass"


def test_workers_page_counts_stale_workers_as_stale(known):
    from dashboards.pages import workers_page
    from farm.db import Device, session_scope
    from farm.db.clock import db_now

    with session_scope() as session:
        cpu = session.query(Device).filter_by(uuid="CPU-1").one()
        cpu.worker, cpu.last_heartbeat = "farm-cpu@h1", None  # registered, never beat
        gpu = session.query(Device).filter_by(uuid="GPU-1").one()
        gpu.worker, gpu.last_heartbeat = "farm-gpu0@h1", db_now(session) - timedelta(hours=2)
    body = workers_page().body
    assert re.search(r"0 live workers, 2 stale \(no heartbeat within [\d.]+ s\), on 2 registered devices", body)
    never = _cells(body, "farm-cpu@h1", "workers")
    assert (never["state"], never["last_heartbeat"]) == ("stale (never beat)", "never")
    assert _cells(body, "farm-gpu0@h1", "workers")["state"] == "stale"


def test_compare_page_defaults_a_and_b_to_different_sweeps(known):
    from dashboards.pages import compare_page
    from seeding import seed_rerun

    seed_rerun("sweep-b", {"j-fp16-b1": 1.5})
    form = compare_page(None, None).body
    selected = dict(re.findall(r'<select name="(a|b)">.*?<option value="([^"]+)" selected>', form, re.S))
    assert selected == {"a": SWEEP, "b": "sweep-b"}  # before: the newest; after: the newest (the same for both)


def _text_extents(svg: str):
    """(x0, x1, y, text) of every <text> (CHAR_W per glyph, as the chart lays out)."""
    from farm.reports.svg import CHAR_W

    for attrs, text in re.findall(r"<text([^>]*)>([^<]*)</text>", svg):
        if "rotate" in attrs:
            continue
        x = float(re.search(r' x="([-\d.]+)"', attrs).group(1))
        y = float(re.search(r' y="([-\d.]+)"', attrs).group(1))
        width = CHAR_W * len(text)
        anchor = re.search(r'text-anchor="(\w+)"', attrs)
        anchor = anchor.group(1) if anchor else "start"
        x0 = x - width if anchor == "end" else x - width / 2 if anchor == "middle" else x
        yield x0, x0 + width, y, text


def test_build_time_chart_has_axis_values_and_no_clipped_text():
    from farm.reports.svg import W, bar_chart

    bars = [{"label": f"#{i} tensorrt-rtx fp16 batch 64 profile long-sequence-{i}", "value": v, "job": f"j{i}",
             "passed": i != 2} for i, v in enumerate([3.2, 47.9, 148.25])]
    svg = bar_chart("build-time", "build time (s): gpu.nvidia-h100", "seconds", bars)
    height = float(re.search(r'height="(\d+)"', svg).group(1))
    ticks = re.findall(r'class="tick-x"[^>]*>([^<]*)<', svg)
    assert len(ticks) >= 3 and ticks[0] == "0" and float(ticks[-1]) >= 148.25
    for x0, x1, y, text in _text_extents(svg):
        assert 0 <= x0 and x1 <= W and 0 < y <= height, (text, x0, x1, y)
    assert "148.2 (failed gate)" in svg or "148.3 (failed gate)" in svg
