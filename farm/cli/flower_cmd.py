"""``farm flower``: Celery's Flower monitor over the farm's broker."""

from __future__ import annotations

import os
import sys

import click

from farm.cli.dialect import renamed_option
from farm.optional import require


@click.command("flower")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (127.0.0.1: this host only), as for farm dashboard.")
@click.option("--port", default=5555, show_default=True, type=click.IntRange(1, 65535))
@renamed_option("--address", "--host", "host")
def flower_cmd(host, port):
    """Run Flower (Celery's live monitor) on the broker at FARM_BROKER_URL;
    needs the deploy extra."""
    require("flower", "farm flower")
    command = [sys.executable, "-m", "celery", "-A", "farm.celery_app", "flower", f"--port={port}",
               f"--address={host}"]
    sys.stdout.flush()
    os.execv(sys.executable, command)  # Flower is the process from here on (signals, PID 1)
