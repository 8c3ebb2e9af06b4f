"""Read-only live dashboard (stdlib http.server): ``farm dashboard``.

Only GET is served. Artifacts are streamed from the content-addressed
store after their sha256 is verified (store.get_file); keys must be known
to the database and be sha256 hex digests, so no path ever comes from the
request. Binds 127.0.0.1 by default: results may be confidential.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

from sqlalchemy import select

from dashboards import pages
from farm.db import Artifact, Job, session_scope
from farm.errors import NotFoundError, StoreIntegrityError
from farm.store import open_store

_SHA = re.compile(r"^/artifact/([0-9a-f]{64})$")
_SWEEP = re.compile(r"^/sweep/([0-9A-Za-z_-]{1,32})$")


def _known_artifact(key: str) -> bool:
    with session_scope() as session:
        return bool(session.get(Artifact, key) or session.scalar(
            select(Job.id).where(Job.artifact_sha256 == key).limit(1)))


class Handler(BaseHTTPRequestHandler):
    server_version = "EngineFarmDashboard"

    def log_message(self, fmt, *args):  # quiet; the CLI prints the address once
        pass

    def do_GET(self):  # noqa: N802 (http.server's naming)
        path = unquote(urlparse(self.path).path)
        try:
            if path == "/":
                return self._html(pages.sweeps_page())
            if path == "/best":
                return self._html(pages.best_page())
            if match := _SWEEP.match(path):
                return self._html(pages.sweep_page(match.group(1)))
            if match := _SHA.match(path):
                return self._artifact(match.group(1))
            self._error(404, "not found")
        except NotFoundError as exc:
            self._error(404, str(exc))
        except StoreIntegrityError as exc:
            self._error(500, str(exc))
        except Exception:  # a broken page must not take the server down
            traceback.print_exc()
            self._error(500, "internal error (see the server's log)")

    def _html(self, text: str, status: int = 200) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._html(pages.page(f"{status}", f"<p>{message}</p>"), status)

    def _artifact(self, key: str) -> None:
        if not _known_artifact(key):
            return self._error(404, f"no artifact {key}")
        with tempfile.TemporaryDirectory() as tmp:
            path = open_store().get_file(key, Path(tmp) / "artifact")  # verifies the hash
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(path.stat().st_size))
            self.send_header("Content-Disposition", f'attachment; filename="{key[:16]}.bin"')
            self.send_header("X-Content-SHA256", key)
            self.end_headers()
            with open(path, "rb") as handle:
                shutil.copyfileobj(handle, self.wfile)


def make_server(host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
