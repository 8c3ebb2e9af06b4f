"""Read-only live dashboard (stdlib http.server): ``farm dashboard``.

Only GET is served. Artifacts are streamed from the content-addressed
store after their sha256 is verified (store.get_file); keys must be known
to the database and be sha256 hex digests, so no path ever comes from the
request. Binds 127.0.0.1 by default: results may be confidential. Beyond
loopback a token is required (FARM_DASHBOARD_TOKEN), sent as a Bearer
token or as the basic-auth password, compared in constant time. Every
response carries hardening headers; the pages are inline CSS and SVG plus
one same-origin script (/live.js: in-place updates through fetch, no inline
code), so the CSP allows that script, its fetches and same-origin GET forms
(view, price and compare pickers), nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import shutil
import socket
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

from dashboards import pages
from farm import fetch
from farm.errors import ArtifactMissingError, NotFoundError, StoreIntegrityError, UserError
from farm.redact import masked_traceback

_SHA = re.compile(r"^/artifact/([0-9a-f]{64})$")
_SWEEP = re.compile(r"^/sweep/([0-9A-Za-z_-]{1,32})$")
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
MIN_TOKEN_CHARS = 12
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "[::1]", "::1"}


def is_loopback(host: str) -> bool:
    """True if every address ``host`` resolves to is a loopback address."""
    if not host:
        return False  # "" binds every interface
    try:
        infos = socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def _host_only(header: str) -> str:
    """The host of a Host header, without its port ('[::1]:8765' -> '[::1]')."""
    value = header.strip().lower()
    if value.startswith("["):
        return value.split("]", 1)[0] + "]"
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _digest(secret: str | bytes) -> bytes:
    return hashlib.sha256(secret.encode() if isinstance(secret, str) else secret).digest()


class Handler(BaseHTTPRequestHandler):
    server_version = "EngineFarmDashboard"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet; the CLI prints the address once
        pass

    def end_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if not self._authorized():
            return
        url = urlparse(self.path)
        path, query = unquote(url.path), parse_qs(url.query)
        fragment = query.get("fragment") == ["1"]
        try:
            if path == "/live.js":
                return self._send(pages.LIVE_JS.encode(), "text/javascript; charset=utf-8")
            if (page := self._page(path, query)) is not None:
                return self._html(page.body if fragment else page.html())
            if match := _SHA.match(path):
                return self._artifact(match.group(1))
            self._error(404, "not found")
        except NotFoundError as exc:
            self._error(404, str(exc))
        except UserError as exc:
            self._error(400, str(exc))
        except (StoreIntegrityError, ArtifactMissingError) as exc:
            # Known to the database, but the verified bytes are gone: not a server bug.
            self._error(410, f"{exc}; re-run its job to rebuild it")
        except Exception as exc:  # a broken page must not take the server down
            self.server.log_error(masked_traceback(exc))  # type: ignore[attr-defined]
            self._error(500, "internal error (see the server's log)")

    def _authorized(self) -> bool:
        """Token (Bearer, or the basic-auth password) when one is configured;
        without one (loopback only) the Host header must name loopback, so a
        DNS-rebinding page cannot read results through the user's browser."""
        token = getattr(self.server, "token", None)
        if token is None:
            if _host_only(self.headers.get("Host") or "") in _LOOPBACK_NAMES:
                return True
            self._error(403, "this dashboard serves loopback only (Host header is not localhost)")
            return False
        if hmac.compare_digest(_digest(self._presented_secret()), _digest(token)):
            return True
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="Engine Farm", charset="UTF-8"')
        body = pages.page("401", "<p>authentication required</p>").encode()
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return False

    def _presented_secret(self) -> bytes:
        scheme, _, value = (self.headers.get("Authorization") or "").strip().partition(" ")
        if scheme.lower() == "bearer":
            return value.strip().encode()
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True)
            except ValueError:
                return b""
            return decoded.partition(b":")[2]
        return b""

    def _page(self, path: str, query: dict) -> pages.Page | None:
        if path == "/":
            return pages.sweeps_page()
        if path == "/best":
            return pages.best_page()
        if path == "/workers":
            return pages.workers_page()
        if path == "/compare":
            a, b = query.get("a", [None])[0], query.get("b", [None])[0]
            return pages.compare_page(a, b)
        if match := _SWEEP.match(path):
            prices = [p for p in query.get("price", []) if p.strip()]
            return pages.sweep_page(match.group(1), query.get("view", ["jobs"])[0], prices)
        return None

    def _html(self, text: str, status: int = 200) -> None:
        self._send(text.encode(), "text/html; charset=utf-8", status)

    def _send(self, body: bytes, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._html(pages.page(f"{status}", f"<p>{escape(message)}</p>"), status)

    def _artifact(self, key: str) -> None:
        with fetch.verified_file(key) as path:  # farm fetch's module: recorded artifacts only, hash verified
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(path.stat().st_size))
            self.send_header("Content-Disposition", f'attachment; filename="{fetch.download_name(key)}"')
            self.send_header("X-Content-SHA256", key)
            self.end_headers()
            with open(path, "rb") as handle:
                shutil.copyfileobj(handle, self.wfile)


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler, token: str | None):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.token = token
        super().__init__(address, handler)

    def log_error(self, message: str) -> None:
        import sys

        sys.stderr.write(message)


def make_server(host: str = "127.0.0.1", port: int = 8765, token: str | None = None) -> ThreadingHTTPServer:
    """``token`` None serves without authentication, which only loopback may do."""
    if token is None and not is_loopback(host):
        raise ValueError(f"binding {host!r} beyond loopback needs a token")
    return DashboardServer((host, port), Handler, token)
