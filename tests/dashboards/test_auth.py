"""``farm dashboard`` beyond loopback: a real server process, real HTTP
requests. Without the token nothing is served (pages or engines); with
it (Bearer, or basic auth as a browser sends it) everything is, artifact
downloads still hash-verified; every response carries the hardening
headers."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from seeding import SWEEP

TOKEN = "s3cret-token-for-tests-0123"


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def _start(host: str, token: str | None) -> tuple[subprocess.Popen, int]:
    env = {k: v for k, v in os.environ.items() if k != "FARM_DASHBOARD_TOKEN"}
    if token:
        env["FARM_DASHBOARD_TOKEN"] = token
    process = subprocess.Popen([sys.executable, "-m", "farm", "dashboard", "--host", host, "--port", "0"], env=env,
                               stderr=subprocess.PIPE, text=True)
    line = process.stderr.readline()
    match = re.search(r":(\d+)/ \(", line)
    assert match, line + (process.stderr.read() if process.poll() is not None else "")
    return process, int(match.group(1))


@pytest.fixture
def open_dashboard(known):
    process, port = _start("0.0.0.0", TOKEN)
    yield f"http://127.0.0.1:{port}", known
    process.terminate()
    process.wait(timeout=30)
    process.stderr.close()


def _basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _assert_hardened(headers: dict) -> None:
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    # Scripts: only the same-origin /live.js (in-place updates), never inline code.
    scripts = csp.split("script-src", 1)[1].split(";", 1)[0].split()
    assert scripts == ["'self'"]
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"


WRONG = [{}, {"Authorization": "Bearer wrong-token-0000000000"}, {"Authorization": f"Bearer {TOKEN}x"},
         {"Authorization": f"Bearer {TOKEN[:-1]}"}, {"Authorization": "Basic !!!"}, {"Authorization": "Basic"},
         {"Authorization": "Bearer"}, {"Authorization": TOKEN}, {"Authorization": f"Token {TOKEN}"}]


def test_nothing_is_served_without_the_token(open_dashboard):
    url, known = open_dashboard
    wrong = WRONG + [_basic("farm", "wrong"), _basic(TOKEN, ""), _basic("farm", TOKEN + " ")]
    for path in ["/", "/best", f"/sweep/{SWEEP}", f"/artifact/{known['j-fp16-b1']}", "/x", "/artifact/../etc"]:
        for credentials in wrong:
            status, body, headers = _get(url + path, credentials)
            assert status == 401 and headers["WWW-Authenticate"].startswith("Basic realm="), (path, credentials)
            assert b"engine of" not in body and SWEEP.encode() not in body
            _assert_hardened(headers)


@pytest.mark.parametrize("credentials", [{"Authorization": f"Bearer {TOKEN}"}, _basic("anyone", TOKEN)])
def test_the_token_opens_pages_and_verified_downloads(open_dashboard, credentials):
    url, known = open_dashboard
    status, body, headers = _get(url + f"/sweep/{SWEEP}", credentials)
    assert status == 200 and SWEEP.encode() in body
    _assert_hardened(headers)
    key = known["j-fp16-b1"]
    status, body, headers = _get(f"{url}/artifact/{key}", credentials)
    assert status == 200 and hashlib.sha256(body).hexdigest() == key == headers["X-Content-SHA256"]
    _assert_hardened(headers)
    from farm.store import open_store

    open_store().local_path(key).write_bytes(b"tampered")  # still verified: refused, and not a 500
    status, body, headers = _get(f"{url}/artifact/{key}", credentials)
    assert status == 410 and b"corrupt" in body and b"tampered" not in body
    _assert_hardened(headers)
    open_store().local_path(key).unlink()
    assert _get(f"{url}/artifact/{key}", credentials)[0] == 410


def test_beyond_loopback_without_a_token_refuses_to_start(known):
    env = {k: v for k, v in os.environ.items() if k != "FARM_DASHBOARD_TOKEN"}
    result = subprocess.run([sys.executable, "-m", "farm", "dashboard", "--host", "0.0.0.0", "--port", "0"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: --host 0.0.0.0 serves every result and engine beyond this host; "
                                    "set FARM_DASHBOARD_TOKEN")


def test_the_token_is_compared_in_constant_time(known, monkeypatch):
    """Every check hashes both sides to fixed-length digests and compares
    them with hmac.compare_digest, whose time does not depend on how much
    of a guess is right."""
    import threading

    import farm.cli  # noqa: F401  (farm.reports.html imports farm.cli.output: load the CLI first, as `farm` does)
    from dashboards import server as dashboard

    calls = []
    real = dashboard.hmac.compare_digest
    monkeypatch.setattr(dashboard.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    httpd = dashboard.make_server("127.0.0.1", 0, token=TOKEN)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        assert _get(url, {"Authorization": "Bearer " + TOKEN[:5]})[0] == 401
        assert _get(url, {"Authorization": "Bearer " + TOKEN})[0] == 200
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert len(calls) == 2 and all(len(a) == len(b) == 32 for a, b in calls)
    assert calls[1][0] == calls[1][1] == hashlib.sha256(TOKEN.encode()).digest()


def test_loopback_without_a_token_refuses_foreign_host_headers(known):
    """No token is needed on 127.0.0.1, but a page on another site that
    rebinds its DNS name to 127.0.0.1 sends its own Host: refused."""
    process, port = _start("127.0.0.1", None)
    try:
        url = f"http://127.0.0.1:{port}"
        status, _, headers = _get(url + "/")
        assert status == 200
        _assert_hardened(headers)
        assert _get(url + "/", {"Host": f"localhost:{port}"})[0] == 200
        status, body, _ = _get(url + "/", {"Host": "attacker.example"})
        assert status == 403 and SWEEP.encode() not in body
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stderr.close()


def test_post_is_still_refused_with_headers(open_dashboard):
    url, _ = open_dashboard
    request = urllib.request.Request(url + "/", data=b"x", method="POST", headers={"Authorization": f"Bearer {TOKEN}"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 501
    _assert_hardened(dict(info.value.headers))
