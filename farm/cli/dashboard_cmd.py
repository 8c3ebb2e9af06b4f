from __future__ import annotations

import click

from farm.errors import UserError


@click.command("dashboard")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (127.0.0.1: this host only).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
def dashboard_cmd(host, port):
    """Serve a read-only web dashboard over the results database: sweeps
    with progress, sweep plots, best per GPU, artifact downloads."""
    from dashboards.server import make_server  # imported here: the CLI starts fast without it

    try:
        server = make_server(host, port)
    except OSError as exc:  # port in use, unknown host, no permission
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    click.echo(f"dashboard on http://{host}:{server.server_address[1]}/ (Ctrl-C stops)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
