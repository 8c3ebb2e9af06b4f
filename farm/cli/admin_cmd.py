from __future__ import annotations

import json
import os
import subprocess
import sys

import click
from sqlalchemy import select

from farm.cli.output import to_json
from farm.config import stale_s
from farm.db import Device, session_scope, upgrade
from farm.db.clock import db_now
from farm.spec_schema import SPEC_SCHEMA


@click.group("worker")
def worker_group() -> None:
    """Run workers on this host."""


@worker_group.command("start")
@click.option("--device", default="all", show_default=True,
              help="all | cpu | gpu | GPU indices (0,1) | GPU UUIDs, comma-separated.")
@click.option("--loglevel", default="INFO", show_default=True)
def worker_start(device, loglevel):
    """Start one pinned solo-pool worker process per selected device; each
    consumes only its device class's queue. Runs until interrupted: the first
    SIGTERM/SIGINT lets current jobs finish (exit 0), a second one (or
    FARM_SHUTDOWN_GRACE_S, default 540 s) stops at once and hands them back."""
    command = [sys.executable, "-m", "workers", "start", "--device", device, "--loglevel", loglevel]
    # Become the launcher (same pid): signals from a container runtime or a
    # terminal reach it directly, and as PID 1 it is the one that reaps.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)


def _device_rows() -> list[dict]:
    with session_scope() as session:
        rows, now = [], db_now(session)
        for d in session.scalars(select(Device).order_by(Device.host, Device.kind, Device.index)):
            age = (now - d.last_heartbeat).total_seconds() if d.last_heartbeat else None
            rows.append({"uuid": d.uuid, "kind": d.kind, "name": d.name, "device_class": d.device_class,
                         "host": d.host, "index": d.index, "compute_capability": d.compute_capability,
                         "memory_mb": d.memory_mb, "driver_version": d.driver_version, "worker": d.worker,
                         "current_job": d.current_job_id, "heartbeat_age_s": age,
                         "live": d.worker is not None and age is not None and age < stale_s()})
        return rows


@click.command("devices")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--local", is_flag=True, help="Discover this host's devices instead of listing registered ones.")
def devices_cmd(fmt, local):
    """List devices registered by workers (or, with --local, this host's)."""
    if local:
        out = subprocess.run([sys.executable, "-m", "workers", "discover"], capture_output=True, text=True,
                             check=True).stdout
        rows = json.loads(out)
    else:
        rows = _device_rows()
    if fmt == "json":
        click.echo(to_json(rows))
        return
    for row in rows:
        extra = f"cc {row['compute_capability']}" if row.get("compute_capability") else row["kind"]
        click.echo(f"{row['device_class']}  {row['name']}  {extra}  host={row['host']}  uuid={row['uuid']}")


@click.command("workers")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def workers_cmd(fmt):
    """List live workers: device, current job, last heartbeat."""
    rows = [r for r in _device_rows() if r["live"]]
    if fmt == "json":
        click.echo(to_json(rows))
        return
    if not rows:
        click.echo("no live workers")
    for row in rows:
        click.echo(f"{row['worker']}  {row['device_class']}  device={row['uuid']}  "
                   f"job={row['current_job'] or '-'}  heartbeat {row['heartbeat_age_s']:.1f}s ago")


@click.group("db")
def db_group() -> None:
    """Database maintenance."""


@db_group.command("upgrade")
def db_upgrade():
    """Create or migrate the database at FARM_DB_URL to the newest schema."""
    revision = upgrade()
    click.echo(f"database at revision {revision}")


@click.group("spec")
def spec_group() -> None:
    """Sweep spec helpers."""


@spec_group.command("schema")
def spec_schema():
    """Print the JSON Schema of sweep spec files."""
    click.echo(json.dumps(SPEC_SCHEMA, indent=2))
