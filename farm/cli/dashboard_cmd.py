from __future__ import annotations

import os

import click

from farm.errors import UserError
from farm.terminal import say

TOKEN_VARIABLE = "FARM_DASHBOARD_TOKEN"


@click.command("dashboard")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (127.0.0.1: this host only). Any other address needs FARM_DASHBOARD_TOKEN.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
def dashboard_cmd(host, port):
    """Serve a read-only web dashboard over the results database: sweeps
    with progress, sweep plots, best per GPU, artifact downloads.

    Beyond loopback every request must carry the token in
    FARM_DASHBOARD_TOKEN: 'Authorization: Bearer TOKEN', or basic auth
    with the token as password (what a browser prompts for).
    """
    from dashboards.server import MIN_TOKEN_CHARS, is_loopback, make_server  # the CLI starts fast without it

    token = os.environ.get(TOKEN_VARIABLE) or None
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise UserError(f"{TOKEN_VARIABLE} must be at least {MIN_TOKEN_CHARS} characters")
    if token is None and not is_loopback(host):
        raise UserError(f"--host {host or repr(host)} serves every result and engine beyond this host; set "
                        f"{TOKEN_VARIABLE} (at least {MIN_TOKEN_CHARS} characters) to require it on every "
                        f"request, or bind 127.0.0.1")
    try:
        server = make_server(host, port, token=token)
    except OSError as exc:  # port in use, unknown host, no permission
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    guard = "token required" if token else "loopback only, no token"
    say(f"dashboard on http://{host}:{server.server_address[1]}/ ({guard}; Ctrl-C stops)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
