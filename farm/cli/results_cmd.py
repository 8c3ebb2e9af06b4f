from __future__ import annotations

import io
from pathlib import Path

import click
from sqlalchemy import select

from farm.cli.output import BEST_TABLE_COLUMNS, TABLE_COLUMNS, emit, table, to_json
from farm.output_files import check_output
from farm.compat import incompatibility
from farm.db import Device, Job, Measurement, session_scope
from farm.devices import cpu_class, hostname
from farm.errors import ArtifactMissingError, NotFoundError, StoreIntegrityError, UserError
from farm.reports import BEST_FIELDS, BEST_OBJECTIVES, REPORT_FIELDS, Constraints, find_best, load_frame
from farm.reports.best import LATENCY_STATS
from farm.reports.compare import COMPARE_FIELDS, CROSS_FIELDS, comparison, cross_device, parse_prices
from farm.reports.export import to_text, write_parquet
from farm.reports.html import report_html
from farm.reports.rows import frame_rows
from farm.store import open_store


@click.command("report")
@click.argument("sweep_id")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet", "html"]), default="table",
              show_default=True)
@click.option("--view", type=click.Choice(["jobs", "compare", "cross-device"]), default="jobs", show_default=True,
              help="jobs: one row per job; compare: speed-up vs fp32 batch 1 per device; cross-device: each "
                   "configuration on every device, with cost.")
@click.option("--price", "prices", multiple=True, metavar="CLASS=PRICE",
              help="Price per device-hour, e.g. gpu.nvidia-h100=3.5 (repeatable; cross-device view).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE.")
def report_cmd(sweep_id, fmt, view, prices, output):
    """Compare a sweep's configurations.

    Fields are documented in docs/fields.md (stable names): the jobs view
    carries job_id, status, backend, precision, batch_size, profile,
    device, latency_p50_ms (with its bootstrap CI), latency_p99_ms,
    throughput, build_s, artifact_sha256, rel_l2_error and more. --format
    html writes one self-contained page with plots.
    """
    check_output(output)
    frame = load_frame(sweep_id=sweep_id)
    price_map = parse_prices(prices)
    if prices and view != "cross-device":
        raise UserError("--price applies to --view cross-device only")
    if fmt == "html":
        cross_device(frame, price_map)  # unknown device classes in --price fail before anything is written
        best = find_best(sweep_id=sweep_id)
        emit(report_html(sweep_id, frame, best, view, price_map), output)
        return
    if view == "compare":
        frame, fields = comparison(frame), COMPARE_FIELDS
    elif view == "cross-device":
        frame, fields = cross_device(frame, price_map), CROSS_FIELDS
    else:
        fields = REPORT_FIELDS
    if fmt == "parquet":
        write_parquet(frame, fields, output)
        click.echo(f"wrote {output}", err=True)
    elif fmt in ("csv", "json"):
        emit(to_text(frame, fields, fmt), output)
    else:
        emit(table(frame_rows(frame, fields), _table_columns(view), stream=_table_stream(output)), output)
        from farm.reports.summary import summary_sentences

        for sentence in summary_sentences(sweep_id):  # on stderr: the table stays parseable
            click.echo(sentence, err=True)


def _table_columns(view: str):
    if view == "compare":
        return (TABLE_COLUMNS[:1] + TABLE_COLUMNS[2:10] + (("thru gain x", "throughput_gain"),
                                                          ("p50 speed-up x", "speedup"),
                                                          ("baseline", "baseline_job_id"),
                                                          ("e2e p50", "e2e_latency_p50_ms"))
                + TABLE_COLUMNS[10:])
    if view == "cross-device":
        return (TABLE_COLUMNS[:1] + TABLE_COLUMNS[2:10] + (("acc", "accuracy_pass"), ("price/h", "price_per_hour"),
                                                          ("cost/1M inf", "cost_per_million")))
    return TABLE_COLUMNS


def _table_stream(output: Path | None):
    """Tables written to a file get no colour and no terminal width."""
    return io.StringIO() if output else None


def _constraint_options(device_help: str):
    def decorate(func):
        return _with_constraints(func, device_help)
    return decorate


def _with_constraints(func, device_help: str):
    for option in reversed([
        click.argument("model", required=False),
        click.option("--sweep", "sweep_id", help="Only this sweep's results."),
        click.option("--device", help=device_help),
        click.option("--objective", type=click.Choice(BEST_OBJECTIVES), default="latency", show_default=True,
                     help="latency: lowest p50 latency wins; throughput: most samples/s wins."),
        click.option("--max-latency-ms", type=float, help="Only configurations with latency (--latency-stat) at "
                                                          "most X ms."),
        click.option("--latency-stat", type=click.Choice(LATENCY_STATS), default="p99", show_default=True,
                     help="Which latency --max-latency-ms bounds."),
        click.option("--max-rel-error", type=float, help="Only configurations with relative L2 error at most E."),
        click.option("--min-throughput", type=float, help="Only configurations with at least X samples/s."),
        click.option("--max-memory-mb", type=float, help="Only configurations using at most X MB (unmeasured "
                                                         "memory does not qualify)."),
    ]):
        func = option(func)
    return func


def _best(model, sweep_id, device, **constraints):
    if bool(model) == bool(sweep_id):
        raise UserError("give a MODEL or --sweep ID (one of them)")
    return find_best(sweep_id=sweep_id, model=model, constraints=Constraints(device=device, **constraints))


@click.command("best")
@_constraint_options("Device class or GPU/CPU name: an exact one, else whole words (\"H100\" is every H100 class), "
                     "else any part (default: every device).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--remeasure", is_flag=True, help="Re-measure each device class's top 3 configurations "
              "interleaved on one live worker (A B C rounds, same warm-up) and decide from those rounds.")
def best_cmd(model, sweep_id, device, fmt, remeasure, **constraints):
    """The best configuration per device class under the constraints, and
    every configuration statistically tied with it.

    MODEL is a model file, its name or sha256 prefix (all its sweeps), or
    use --sweep ID. Configurations failing the accuracy gate never win.
    Ties: 95 % bootstrap intervals of the objective overlap the leader's;
    among ties the winner has the lower p99, then smaller memory, artifact,
    build time (docs/fields.md).
    """
    best = _best(model, sweep_id, device, **constraints)
    if best.empty:
        raise NotFoundError("no finished configuration meets the constraints")
    if remeasure:
        from farm.search.config import FinalsConfig
        from farm.search.finals import remeasure as interleaved

        best = interleaved(sweep_id, model, Constraints(device=device, **constraints), FinalsConfig())
    rows = frame_rows(best, BEST_FIELDS)
    click.echo(to_json(rows) if fmt == "json" else table(rows, BEST_TABLE_COLUMNS))


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
@_constraint_options("Device class or GPU/CPU name, as for best; it must name one class (default: this "
                     "host's GPU with results, else its CPU).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the artifact.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def fetch_cmd(model, sweep_id, device, output, fmt, **constraints):
    """Write the best artifact for a device to FILE, verified by its sha256.

    Without --device: this host's device (its GPU if it has one with
    results, else its CPU). Refuses an engine that would not run there.
    """
    check_output(output)
    classes = [device] if device else _local_classes()
    for candidate in classes:
        best = _best(model, sweep_id, candidate, **constraints)
        best = best[best["role"] == "winner"] if not best.empty else best
        if not best.empty:
            break
    else:
        raise NotFoundError(f"no finished result for {' or '.join(classes)} meets the constraints")
    if best["device_class"].nunique() > 1:
        raise UserError(f"--device {device!r} matches several device classes "
                        f"({', '.join(sorted(best['device_class'].unique()))}); give one of them")
    winner = best.iloc[0]
    _check_runs_there(winner)
    _fetch_verified(winner, output)
    if fmt == "json":
        fields = ("job_id", "device_class", "backend", "precision", "batch_size", "profile", "artifact_sha256",
                  "latency_p50_ms", "throughput")
        click.echo(to_json({"path": str(output), **frame_rows(best.iloc[:1], fields)[0]}))
        return
    click.echo(f"wrote {output} (sha256 {winner['artifact_sha256']}): {winner['backend']} {winner['precision']} "
               f"batch {winner['batch_size']} profile {winner['profile']} for {winner['device_class']}")


def _fetch_verified(winner, output: Path) -> None:
    key = winner["artifact_sha256"]
    try:
        open_store().get_file(key, output)
    except (StoreIntegrityError, ArtifactMissingError) as exc:
        raise UserError(f"{exc}; nothing was written. Re-run job {winner['job_id']} (farm run/sweep submit "
                        f"--force) to rebuild it") from None
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror or exc}") from None


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
