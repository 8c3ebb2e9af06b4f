from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from farm.cli.output import table, to_json
from farm.compat import incompatibility
from farm.db import Device, Job, Measurement, session_scope
from farm.devices import cpu_class, hostname
from farm.errors import NotFoundError, UserError
from farm.reports import BEST_OBJECTIVES, REPORT_FIELDS, best_per_device, job_rows, jobs_frame
from farm.store import open_store


def _rows(model, sweep_id) -> list[dict]:
    if bool(model) == bool(sweep_id):
        raise UserError("give a MODEL or --sweep ID (one of them)")
    return job_rows(sweep_id=sweep_id, model=model)


@click.command("report")
@click.argument("sweep_id")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE.")
def report_cmd(sweep_id, fmt, output):
    """Compare a sweep's configurations: one row per job.

    JSON and CSV carry the documented fields (docs/fields.md), including
    job_id, status, backend, precision, batch_size, profile, device,
    latency_p50_ms, latency_p99_ms, throughput, build_s, artifact_sha256,
    rel_l2_error.
    """
    rows = job_rows(sweep_id=sweep_id)
    if fmt == "json":
        text = to_json(rows)
    elif fmt == "csv":
        text = jobs_frame(rows).to_csv(index=False)
    else:
        text = table(rows)
    _emit(text, output)


def _emit(text: str, output: Path | None) -> None:
    if output:
        output.write_text(text if text.endswith("\n") else text + "\n")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text)


def _constraint_options(func):
    for option in reversed([
        click.argument("model", required=False),
        click.option("--sweep", "sweep_id", help="Only this sweep's results."),
        click.option("--device", help="Device class or part of a device name (default: every device)."),
        click.option("--objective", type=click.Choice(BEST_OBJECTIVES), default="latency", show_default=True),
        click.option("--max-latency-ms", type=float, help="Only configurations with p99 latency at most X ms."),
        click.option("--max-rel-error", type=float, help="Only configurations with relative L2 error at most E."),
        click.option("--min-throughput", type=float, help="Only configurations with at least X samples/s."),
    ]):
        func = option(func)
    return func


@click.command("best")
@_constraint_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def best_cmd(model, sweep_id, device, objective, max_latency_ms, max_rel_error, min_throughput, fmt):
    """The best configuration per device class under the constraints.

    MODEL is a model file, its name or sha256 prefix (all its sweeps), or
    use --sweep ID. Configurations failing the accuracy gate never win.
    """
    best = best_per_device(_rows(model, sweep_id), objective, max_latency_ms, max_rel_error, device, min_throughput)
    if best.empty:
        raise NotFoundError("no finished configuration meets the constraints")
    rows = [{k: _plain(v) for k, v in row.items()} for row in best[list(REPORT_FIELDS)].to_dict("records")]
    click.echo(to_json(rows) if fmt == "json" else table(rows))


def _plain(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _local_classes() -> list[str]:
    with session_scope() as session:
        devices = session.scalars(select(Device).where(Device.host == hostname())).all()
        gpus = sorted({d.device_class for d in devices if d.kind == "gpu"})
    return gpus + [cpu_class()]


def _device_row(device_class: str) -> dict:
    with session_scope() as session:
        row = session.scalar(select(Device).where(Device.device_class == device_class).limit(1))
        if row is None:
            return {"device_class": device_class, "kind": device_class.split(".", 1)[0], "name": device_class}
        return {"device_class": row.device_class, "kind": row.kind, "name": row.name,
                "compute_capability": row.compute_capability, "versions": row.versions or {}}


@click.command("fetch")
@_constraint_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the artifact.")
def fetch_cmd(model, sweep_id, device, objective, max_latency_ms, max_rel_error, min_throughput, output):
    """Write the best artifact for a device to FILE, verified by its sha256.

    Without --device: this host's device (its GPU if it has one with
    results, else its CPU). Refuses an engine that would not run there.
    """
    rows = _rows(model, sweep_id)
    classes = [device] if device else _local_classes()
    for candidate in classes:
        best = best_per_device(rows, objective, max_latency_ms, max_rel_error, candidate, min_throughput)
        if not best.empty:
            break
    else:
        raise NotFoundError(f"no finished result for {' or '.join(classes)} meets the constraints")
    winner = best.iloc[0]
    _check_runs_there(winner)
    if output.parent and not output.parent.exists():
        raise UserError(f"directory {output.parent} does not exist")
    open_store().get_file(winner["artifact_sha256"], output)
    click.echo(f"wrote {output} (sha256 {winner['artifact_sha256']}): {winner['backend']} {winner['precision']} "
               f"batch {winner['batch_size']} profile {winner['profile']} for {winner['device_class']}")


def _check_runs_there(winner) -> None:
    with session_scope() as session:
        job = session.get(Job, winner["job_id"])
        source = job.result_job_id or job.id
        measurement = session.scalar(select(Measurement).where(Measurement.job_id == source)
                                     .order_by(Measurement.attempt.desc()).limit(1))
        build_info = measurement.build_info if measurement else {}
    reason = incompatibility(build_info or {}, _device_row(winner["device_class"]))
    if reason:
        raise UserError(f"refusing to fetch: {reason}")
