"""``farm flower``: Celery's Flower monitor over the farm's broker."""

from __future__ import annotations

import os
import sys

import click

from farm.optional import require


@click.command("flower")
@click.option("--port", default=5555, show_default=True, type=click.IntRange(1, 65535))
@click.option("--address", default="127.0.0.1", show_default=True, help="Address to bind.")
def flower_cmd(port, address):
    """Run Flower (Celery's live monitor) on the broker at FARM_BROKER_URL;
    needs the deploy extra."""
    require("flower", "farm flower")
    command = [sys.executable, "-m", "celery", "-A", "farm.celery_app", "flower", f"--port={port}",
               f"--address={address}"]
    sys.stdout.flush()
    os.execv(sys.executable, command)  # Flower is the process from here on (signals, PID 1)
