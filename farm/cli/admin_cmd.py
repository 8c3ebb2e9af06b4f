from __future__ import annotations

import json
import os
import subprocess
import sys

import click

from farm.cli.dialect import device_selectors, format_option
from farm.cli.output import render_table, to_json
from farm.db import upgrade
from farm.service import device_rows
from farm.spec_schema import SPEC_SCHEMA
from farm.terminal import say


@click.group("worker")
def worker_group() -> None:
    """Run workers on this host."""


@worker_group.command("start")
@click.option("--device", "devices", multiple=True,
              help="all (default) | cpu | gpu | device class | GPU name | GPU index | GPU UUID; repeatable or "
                   "comma-separated.")
@click.option("--loglevel", default="INFO", show_default=True)
def worker_start(devices, loglevel):
    """Start one pinned solo-pool worker process per selected device; each
    consumes only its device class's queue. Runs until interrupted: the first
    SIGTERM/SIGINT lets current jobs finish (exit 0), a second one (or
    FARM_SHUTDOWN_GRACE_S, default 540 s) stops at once and hands them back."""
    device = ",".join(device_selectors(devices)) or "all"
    command = [sys.executable, "-m", "workers", "start", "--device", device, "--loglevel", loglevel]
    # Become the launcher (same pid): signals from a container runtime or a
    # terminal reach it directly, and as PID 1 it is the one that reaps.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)


@click.command("devices")
@format_option()
@click.option("--local", is_flag=True, help="Discover this host's devices instead of listing registered ones.")
def devices_cmd(fmt, local):
    """List devices registered by workers (or, with --local, this host's)."""
    if local:
        out = subprocess.run([sys.executable, "-m", "workers", "discover"], capture_output=True, text=True,
                             check=True).stdout
        rows = json.loads(out)
    else:
        rows = device_rows()
    if fmt == "json":
        click.echo(to_json(rows))
        return
    if not rows:
        click.echo("no devices registered" if not local else "no devices found")
        return
    for row in rows:
        row["versions_text"] = versions_text(row)
    headers = ["device class", "name", "kind", "cc", "host", "uuid", "versions"]
    keys = ["device_class", "name", "kind", "compute_capability", "host", "uuid", "versions_text"]
    click.echo(render_table(headers, keys, rows))
    for row in rows:
        for name, error in sorted(((row.get("versions") or {}).get("broken_backends") or {}).items()):
            say(f"{row['uuid']}: backend {name} failed to load: {error}")


def versions_text(row: dict) -> str:
    """``onnxruntime 1.32.0, cuda_runtime 12.8, driver 570.86`` as the device's worker registered them
    (what reuse compares and ``farm fetch`` checks)."""
    versions = row.get("versions") or {}
    parts = [f"{k} {v}" for k, v in sorted((versions.get("libraries") or {}).items())]
    parts += [f"{k} {versions[k]}" for k in ("cuda_runtime",) if versions.get(k)]
    if row.get("driver_version"):
        parts.append(f"driver {row['driver_version']}")
    return ", ".join(parts) or "-"


@click.command("workers")
@format_option()
def workers_cmd(fmt):
    """List live workers: device, current job, last heartbeat."""
    rows = [r for r in device_rows() if r["live"]]
    if fmt == "json":
        click.echo(to_json(rows))
        return
    if not rows:
        click.echo("no live workers")
        return
    for row in rows:
        row["heartbeat"] = f"{row['heartbeat_age_s']:.1f}s ago"
    headers = ["worker", "device class", "device", "current job", "heartbeat", "backends"]
    keys = ["worker", "device_class", "uuid", "current_job", "heartbeat", "backends"]
    click.echo(render_table(headers, keys, rows))


@click.group("db")
def db_group() -> None:
    """Database maintenance."""


@db_group.command("upgrade")
@format_option()
def db_upgrade(fmt):
    """Create or migrate the database at FARM_DB_URL to the newest schema."""
    revision = upgrade()
    if fmt == "json":
        click.echo(to_json({"revision": revision}))
        return
    say(f"database at revision {revision}")


@click.group("spec")
def spec_group() -> None:
    """Sweep spec helpers."""


@spec_group.command("schema")
@format_option(help="The schema is a JSON document: table and json both print it (indented).")
def spec_schema(fmt):
    """Print the JSON Schema of sweep spec files."""
    click.echo(json.dumps(SPEC_SCHEMA, indent=2))
