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
    assert re.findall(r'<tr data-job="([^"]+)">', best) == ["j-cpu-int8", "j-bf16-b1", "j-fp16-b1"]
    links = re.findall(r'class="artifact" href="/artifact/([0-9a-f]{64})"', dom)
    assert sorted(links) == sorted(known.values())


def test_best_page(dashboard):
    status, body, _ = _get(dashboard + "/best")
    assert status == 200
    text = body.decode()
    assert "known.onnx" in text and re.search(rf'data-job="j-bf16-b1">.*?{H100}.*?winner', text, re.S)


def test_artifact_download_is_verified(dashboard, known):
    key = known["j-fp16-b1"]
    status, body, headers = _get(f"{dashboard}/artifact/{key}")
    assert status == 200 and body == b"engine of j-fp16-b1" and hashlib.sha256(body).hexdigest() == key
    assert headers["X-Content-SHA256"] == key
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
