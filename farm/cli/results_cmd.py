from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from farm.cli.dialect import format_option, one_device, view_option
from farm.cli.numbers import FiniteFloat
from farm.cli.output import BEST_TABLE_COLUMNS, TABLE_COLUMNS, emit, emit_export, table, table_stream, to_json
from farm.output_files import check_output
from farm.db import Device, session_scope
from farm.devices import cpu_class, hostname
from farm.errors import NotFoundError, UserError
from farm.fetch import Request, device_dict, fetch
from farm.reports import BEST_FIELDS, BEST_OBJECTIVES, REPORT_FIELDS, Constraints, find_best, load_frame
from farm.reports.best import LATENCY_PER, LATENCY_STATS, left_out_counts, rank
from farm.reports.compare import COMPARE_FIELDS, CROSS_FIELDS, comparison, cross_device, parse_prices
from farm.reports.html import report_html
from farm.reports.rows import frame_rows
from farm.terminal import say


@click.command("report")
@click.argument("sweep_id")
@format_option("csv", "parquet", "html")
@view_option(["jobs", "speedup", "cross-device"],
             help="jobs: one row per job; speedup: throughput gain and p50 speed-up vs fp32 batch 1 per device; "
                  "cross-device: each configuration on every device, with cost.")
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
    price_map = parse_prices(prices)
    frame = load_frame(sweep_id=sweep_id)
    if prices and view != "cross-device":
        raise UserError("--price applies to --view cross-device only")
    if fmt == "html":
        cross_device(frame, price_map)  # unknown device classes in --price fail before anything is written
        best = rank(frame)  # find_best(sweep_id=...) on the frame already loaded (loading is most of the time)
        emit(report_html(sweep_id, frame, best, view, price_map), output)
        return
    if view == "speedup":
        frame, fields = comparison(frame), COMPARE_FIELDS
    elif view == "cross-device":
        frame, fields = cross_device(frame, price_map), CROSS_FIELDS
    else:
        fields = REPORT_FIELDS
    if not emit_export(frame, fields, fmt, output):
        emit(table(frame_rows(frame, fields), _table_columns(view), stream=table_stream(output)), output)
        from farm.reports.summary import summary_sentences

        for sentence in summary_sentences(sweep_id):  # under the table, on its stream (csv/json: none)
            say(sentence)


def _table_columns(view: str):
    if view == "speedup":
        return (TABLE_COLUMNS[:1] + TABLE_COLUMNS[2:11] + (("thru gain x", "throughput_gain"),
                                                          ("p50 speed-up x", "speedup"),
                                                          ("baseline", "baseline_job_id"),
                                                          ("e2e p50", "e2e_latency_p50_ms"))
                + TABLE_COLUMNS[11:])
    if view == "cross-device":
        return (TABLE_COLUMNS[:1] + TABLE_COLUMNS[2:11] + (("acc", "accuracy_pass"), ("price/h", "price_per_hour"),
                                                          ("cost/1M inf", "cost_per_million")))
    return TABLE_COLUMNS


def _constraint_options(device_help: str):
    def decorate(func):
        return _with_constraints(func, device_help)
    return decorate


def _with_constraints(func, device_help: str):
    for option in reversed([
        click.argument("model", required=False),
        click.option("--sweep", "sweep_id", help="Only this sweep's results."),
        click.option("--device", help=device_help),
        click.option("--profile", help="Only this profile's workload (default: every workload, each ranked "
                                       "on its own)."),
        click.option("--objective", type=click.Choice(BEST_OBJECTIVES), default="latency", show_default=True,
                     help="latency: lowest p50 latency wins (see --latency-per); throughput: most samples/s wins; "
                          "server-qps / single-stream / multi-stream / offline: the LoadGen scenario's VALID figure "
                          "(highest QPS, lowest p90, lowest p99 per query, most samples/s; docs/scenarios.md); "
                          "efficiency: most inferences per joule."),
        click.option("--p99-ms", type=click.FloatRange(min=0, min_open=True),
                     help="server-qps: the highest VALID load whose p99 is also at most X ms."),
        click.option("--latency-per", type=click.Choice(LATENCY_PER), default="request", show_default=True,
                     help="Latency objective: p50 of one request (a call of the job's batch) or per sample "
                          "(p50 / batch)."),
        click.option("--max-latency-ms", type=FiniteFloat(0), help="Only configurations with latency (--latency-stat) at "
                                                          "most X ms."),
        click.option("--latency-stat", type=click.Choice(LATENCY_STATS), default="p99", show_default=True,
                     help="Which latency --max-latency-ms bounds."),
        click.option("--max-rel-error", type=FiniteFloat(0), help="Only configurations with a measured relative L2 error "
                                                         "of at most E."),
        click.option("--min-throughput", type=FiniteFloat(0), help="Only configurations with at least X samples/s."),
        click.option("--max-memory-mb", type=FiniteFloat(0), help="Only configurations using at most X MB (unmeasured "
                                                         "memory does not qualify)."),
        click.option("--allow-unchecked", is_flag=True, help="Let configurations whose accuracy was not "
                                                             "measured (accuracy_status unchecked) win."),
        click.option("--allow-host-bound", is_flag=True, help="Let configurations flagged host_bound (the "
                                                              "figure is the host's launch rate) or host_contended "
                                                              "(measured while the host's CPUs were "
                                                              "oversubscribed) win."),
    ]):
        func = option(func)
    return func


def _best(model, sweep_id, device, **constraints):
    if bool(model) == bool(sweep_id):
        raise UserError("give a MODEL or --sweep ID (one of them)")
    if constraints.get("p99_ms") is not None and constraints.get("objective") != "server-qps":
        raise UserError("--p99-ms applies to --objective server-qps only")
    return find_best(sweep_id=sweep_id, model=model, constraints=_constraints(device, constraints))


def _constraints(device, constraints: dict) -> Constraints:
    return Constraints(device=device, **constraints)


@click.command("best")
@_constraint_options("all (default) | cpu | gpu | device class | GPU/CPU name: an exact one, else whole words "
                     "(\"H100\" is every H100 class), else any part.")
@format_option()
@click.option("--remeasure", is_flag=True, help="Re-measure each device class's top 3 configurations "
              "interleaved on one live worker (A B C rounds, same warm-up) and decide from those rounds; "
              "each is first rebuilt with its backend's tuned build (torch max-autotune, TensorRT builder "
              "optimization level 5) and timed against it.")
@click.option("--no-tuned", is_flag=True, help="With --remeasure: no tuned rebuilds, the fast builds only.")
@click.option("--top", type=click.IntRange(1, 20), default=None,
              help="With --remeasure: finalists per device class (default 3).")
def best_cmd(model, sweep_id, device, fmt, remeasure, no_tuned, top, **constraints):
    """The best configuration per device class and workload under the
    constraints, and every configuration statistically tied with it.

    MODEL is a model file, its name or sha256 prefix (all its sweeps), or
    use --sweep ID. A workload is the model on one profile's shapes; batch
    size is free within it, and configurations of different workloads are
    never compared. Eligible: accuracy pass or reference (the fp32
    reference itself); unchecked only with --allow-unchecked; fail never.

    \b
    Tie rule: the winner has the best point estimate of the objective's own
    figure (p50 per request or per sample, or samples/s); a configuration
    is tied when that figure is within 25 % of the winner's and its 95 %
    bootstrap interval overlaps the winner's. Exact equals are broken by
    lower p99, then memory, artifact size, build time (docs/fields.md).
    """
    if remeasure and constraints["objective"] not in ("latency", "throughput"):
        raise UserError(f"--remeasure re-times fixed-batch figures; it does not apply to --objective "
                        f"{constraints['objective']}")
    device = one_device(device)  # the CLI's device grammar: all (no filter), cpu, gpu, a class or a name
    best = _best(model, sweep_id, device, **constraints)
    left_out = best.attrs.get("excluded", [])
    for row in left_out:  # on stderr: stdout stays the table or the JSON rows
        say(f"not ranked: {row['job_id']} ({row['device_class']}, {row['backend']} {row['precision']} "
            f"batch {row['batch_size']}, would be {row['would_be']}): {row['reason']}", err=True)
    if best.empty:
        counts = left_out_counts(left_out)
        raise NotFoundError("no finished configuration meets the constraints" + (f" ({counts})" if counts else ""))
    if (no_tuned or top is not None) and not remeasure:
        raise UserError(f"{'--no-tuned' if no_tuned else '--top'} goes with --remeasure")
    if remeasure:
        from farm.search.config import FinalsConfig
        from farm.search.finals import remeasure as interleaved

        config = FinalsConfig() if top is None else FinalsConfig(top=top)
        best = interleaved(sweep_id, model, Constraints(device=device, **constraints), config,
                           tuned=not no_tuned, on_queued=_say_queued)
        from farm.tuned import gain_line

        for row in best.attrs.get("tuned", []):  # on stderr, as the not-ranked lines
            click.echo(gain_line(row), err=True)
    rows = frame_rows(best, BEST_FIELDS)
    click.echo(to_json(rows) if fmt == "json" else table(rows, BEST_TABLE_COLUMNS))


def _say_queued(queued: list[tuple[str, str, str, int]], timeout_s: float) -> None:
    """At once, on stderr: what --remeasure waits for, and whether a worker for it is up now."""
    from farm.service import live_queues

    with session_scope() as session:
        live = live_queues(session)
    for finals_id, device_class, backend, candidates in queued:
        now = ("" if (device_class, backend) in live
               else "; none is running now: start one with 'farm worker start' on a host with that device")
        say(f"finals {finals_id} ({candidates} candidates) queued; waiting up to {timeout_s:g} s for a worker "
            f"of class {device_class} ({backend}){now}", err=True)


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _host_devices() -> list[dict]:
    """This host's devices as its workers registered them (GPUs first), else
    as discovered here with the libraries installed here."""
    with session_scope() as session:
        rows = session.scalars(select(Device).where(Device.host == hostname())).all()
        devices = [device_dict(d) for d in rows]
    if not devices:
        devices = discover_here()
    return sorted(devices, key=lambda d: (d["kind"] != "gpu", d["device_class"]))


def discover_here() -> list[dict]:
    """``python -m workers discover`` (farm never imports NVML itself)."""
    import json
    import subprocess
    import sys

    from farm.backends import backend_names, library_versions

    try:
        out = subprocess.run([sys.executable, "-m", "workers", "discover"], capture_output=True, text=True,
                             check=True, timeout=60).stdout
        found = json.loads(out)
    except (subprocess.SubprocessError, ValueError, OSError):
        found = [{"kind": "cpu", "name": cpu_class(), "device_class": cpu_class(), "versions": {}}]
    libraries = library_versions(backend_names())
    return [{**d, "versions": {**(d.get("versions") or {}), "libraries": libraries}} for d in found]


@click.command("fetch")
@_constraint_options("Device class or GPU/CPU name, as for best; it must name one class (default: this "
                     "host's GPU with results, else its CPU).")
@click.option("--job", "job_id", help="The artifact of this job (any built job: done, built or unsupported).")
@click.option("--target", help="A compute capability (sm_89, 8.9): with MODEL/--sweep the newest engine built "
                               "for it that meets the constraints; the engine is checked against it instead of "
                               "this host.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the artifact.")
@format_option()
def fetch_cmd(model, sweep_id, device, job_id, target, output, fmt, **constraints):
    """Write an artifact to FILE, verified by its sha256.

    MODEL / --sweep: the winner of 'farm best' for the device; --job ID:
    that job's artifact; --target sm_89 (with MODEL or --sweep): the newest
    engine built for that GPU. Every path honours the same constraints
    (farm/fetch.py): an engine never measured (built, or unsupported with an
    artifact) is unchecked, fetched only with --allow-unchecked and never
    under a bound; several workloads ask for --profile. The engine is
    checked against --target, or
    --device's registered device, or else this host: its registered (or
    discovered) GPU with results, else its CPU, with the TensorRT /
    TensorRT-RTX version its worker runs. An engine that would not load
    there is refused with what would.
    """
    check_output(output)
    device = one_device(device)
    request = Request(model=model, sweep_id=sweep_id, job_id=job_id, target=target, device=device,
                      constraints=_constraints(device, constraints), output=str(output))
    picked = fetch(request, output, _host_devices).engine
    if fmt == "json":
        fields = ("job_id", "status", "device_class", "backend", "precision", "batch_size", "profile",
                  "artifact_sha256")
        click.echo(to_json({"path": str(output), **{k: _plain(picked[k]) for k in fields}}))
        return
    say(f"wrote {output} (sha256 {picked['artifact_sha256']}): job {picked['job_id']} ({picked['status']}) "
        f"{picked['backend']} {picked['precision']} batch {picked['batch_size']} profile {picked['profile']} "
        f"for {picked['device_class']}")
