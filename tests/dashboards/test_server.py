import hashlib
import re
import urllib.error
import urllib.request

import pytest

from browser import render
from farm.store import open_store
from seeding import H100, SWEEP


def _get(url: str) -> tuple[int, bytes, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def test_binds_localhost_by_default():
    from click.testing import CliRunner

    from farm.cli.commands import cli

    help_text = CliRunner().invoke(cli, ["dashboard", "--help"]).output
    assert "--host TEXT" in help_text and "127.0.0.1" in help_text and "8765" in help_text


def test_sweeps_page_in_chromium(dashboard, tmp_path):
    dom, shot = render(dashboard + "/", tmp_path, "sweeps")
    assert shot.stat().st_size > 5_000
    row = re.search(rf'<tr data-sweep="{SWEEP}">(.*?)</tr>', dom, re.S).group(1)
    assert 'href="/sweep/sweep-known"' in row and "known.onnx" in row
    assert '<span class="progress">8/8</span>' in row and "7 done, 1 failed" in row


def test_sweep_page_in_chromium(dashboard, known, tmp_path):
    dom, shot = render(f"{dashboard}/sweep/{SWEEP}", tmp_path, "sweep")
    assert shot.stat().st_size > 20_000
    assert len(re.findall(r'<svg[^>]*data-plot="latency-vs-batch"', dom)) == 2
    assert re.search(r'data-plot="pareto".*?data-job="j-fp16-b8" data-x="4" data-y="2000"', dom, re.S)
    best = re.search(r'<table class="best">.*?</table>', dom, re.S).group(0)
    assert re.findall(r'<tr data-job="([^"]+)">', best) == ["j-cpu-int8", "j-fp16-b1", "j-bf16-b1"]
    links = re.findall(r'class="artifact" href="/artifact/([0-9a-f]{64})"', dom)
    assert sorted(links) == sorted(known.values())


def test_best_page(dashboard):
    status, body, _ = _get(dashboard + "/best")
    assert status == 200
    text = body.decode()
    assert "known.onnx" in text and re.search(rf'data-job="j-fp16-b1">.*?{H100}.*?winner', text, re.S)


def test_artifact_download_is_verified(dashboard, known):
    key = known["j-fp16-b1"]
    status, body, headers = _get(f"{dashboard}/artifact/{key}")
    assert status == 200 and body == b"engine of j-fp16-b1" and hashlib.sha256(body).hexdigest() == key
    assert headers["X-Content-SHA256"] == key
    # named as the winner sentence names it: what the file is (a TensorRT engine here)
    assert headers["Content-Disposition"] == 'attachment; filename="tensorrt-fp16-b1.engine"'
    # corrupt the stored object: the server refuses to hand it out
    open_store().local_path(key).write_bytes(b"tampered")
    status, body, _ = _get(f"{dashboard}/artifact/{key}")
    assert status == 410 and b"corrupt" in body  # known to the database, bytes gone: not a server error


@pytest.mark.parametrize("path", ["/artifact/" + "0" * 64, "/artifact/../../etc/passwd", "/sweep/nope", "/x"])
def test_unknown_paths_are_404(dashboard, path):
    assert _get(dashboard + path)[0] == 404


def test_read_only(dashboard):
    request = urllib.request.Request(dashboard + "/", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 501


def test_sweep_views_and_fragments(dashboard, known):
    status, body, headers = _get(f"{dashboard}/sweep/{SWEEP}?view=cross-device&price={H100}%3D3.6")
    page = body.decode()
    assert status == 200 and "cost per 1M inferences" in page and 'data-field="cost_per_million">1.000<' in page
    assert 'data-plot="cost-per-million"' in page and '<script src="/live.js"' in page
    assert 'http-equiv="refresh"' not in page  # nothing reloads the whole page
    status, body, _ = _get(f"{dashboard}/sweep/{SWEEP}?view=speedup")
    assert status == 200 and 'data-field="throughput_gain">' in body.decode()
    status, old, _ = _get(f"{dashboard}/sweep/{SWEEP}?view=compare")  # the view's old name still works
    assert status == 200 and 'data-field="throughput_gain">' in old.decode() and b"(speedup)" in old
    status, body, _ = _get(f"{dashboard}/sweep/{SWEEP}?view=speedup&fragment=1")
    assert status == 200 and not body.startswith(b"<!DOCTYPE") and b'<section class="summary">' in body
    status, body, headers = _get(f"{dashboard}/live.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript") and b"fragment" in body
    assert _get(f"{dashboard}/sweep/{SWEEP}?view=nope")[0] == 400
    assert _get(f"{dashboard}/sweep/{SWEEP}?view=cross-device&price=gpu.nope%3D1")[0] == 400


def test_sweeps_page_updates_in_place(dashboard, known, tmp_path, monkeypatch):
    """The page is rendered once; a job added afterwards shows up in the
    same page (no reload) once live.js fetched the fragment."""
    from dashboards import pages
    from farm.db import Job, session_scope

    original, calls = pages.sweeps_page, []

    def render_then_add_a_job():
        page = original()
        if not calls:
            with session_scope() as session:
                session.add(Job(id="j-new", sweep_id=SWEEP, seq=100, key="key-new", backend="tensorrt",
                                backend_version="10.0", precision="fp16", batch_size=2, profile="default",
                                device_class=H100, config={}, status="queued"))
        calls.append(page.body)
        return page

    monkeypatch.setattr(pages, "sweeps_page", render_then_add_a_job)
    dom, shot = render(dashboard + "/", tmp_path, "live", budget_ms=20_000)
    assert '<span class="progress">8/8</span>' in calls[0]  # what the page first said
    row = re.search(rf'<tr data-sweep="{SWEEP}">(.*?)</tr>', dom, re.S).group(1)
    assert '<span class="progress">8/9</span>' in row and "1 queued" in row
    assert re.search(r'<main id="live"[^>]*data-updated="', dom)


def test_workers_page(dashboard, known, tmp_path):
    from datetime import timedelta

    from farm.db import Device, session_scope
    from farm.db.clock import db_now

    with session_scope() as session:
        gpu = session.query(Device).filter_by(uuid="GPU-1").one()
        gpu.worker, gpu.current_job_id = "farm-gpu0@h1", "j-fp16-b1"
        gpu.last_heartbeat = db_now(session) - timedelta(seconds=1)
        gpu.versions = {"backends": ["tensorrt"], "backend_versions": {"tensorrt": "10.8.0"}}
    dom, shot = render(dashboard + "/workers", tmp_path, "workers")
    assert shot.stat().st_size > 5_000
    assert "1 live workers, 0 stale (no heartbeat within" in dom and "on 2 registered devices" in dom
    row = re.search(r'<tr data-job="farm-gpu0@h1">(.*?)</tr>', dom, re.S).group(1)
    cells = dict(re.findall(r'data-field="(\w+)">([^<]*)<', row))
    assert (cells["state"], cells["device_class"], cells["current_job"], cells["backends"]) == \
        ("live", H100, "j-fp16-b1", "tensorrt 10.8.0")
    assert cells["last_heartbeat"]


def test_compare_page(dashboard, known):
    from seeding import seed_rerun

    seed_rerun("sweep-b", {"j-fp16-b1": 1.5})
    status, body, _ = _get(f"{dashboard}/compare?a={SWEEP}&b=sweep-b")
    page = body.decode()
    assert status == 200 and 'data-plot="sweep-ratio"' in page
    assert re.search(r'data-job="j-fp16-b1-sweep-b" data-x="1.5" data-verdict="slower"', page)


def test_the_download_goes_through_the_fetch_module(dashboard, known, monkeypatch):
    """One fetch module (farm/fetch.py) for the CLI and the dashboard: the
    download asks it, so both refuse an unrecorded or damaged artifact alike."""
    import farm.fetch

    asked = []
    real = farm.fetch.verified_file

    def spy(key):
        asked.append(key)
        return real(key)

    monkeypatch.setattr(farm.fetch, "verified_file", spy)
    key = known["j-fp32-b1"]
    status, body, _ = _get(f"{dashboard}/artifact/{key}")
    assert status == 200 and body == b"engine of j-fp32-b1" and asked == [key]
