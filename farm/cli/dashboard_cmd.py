from __future__ import annotations

import click


@click.command("dashboard")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (127.0.0.1: this host only).")
@click.option("--port", default=8765, show_default=True, type=int)
def dashboard_cmd(host, port):
    """Serve a read-only web dashboard over the results database: sweeps
    with progress, sweep plots, best per GPU, artifact downloads."""
    from dashboards.server import make_server  # imported here: the CLI starts fast without it

    server = make_server(host, port)
    click.echo(f"dashboard on http://{host}:{server.server_address[1]}/ (Ctrl-C stops)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
