from __future__ import annotations

import time

import click

from farm.cli.dialect import format_option
from farm.cli.options import spec_from_cli, spec_options
from farm.cli.output import render_table, to_json
from farm.service import cancel_sweep, list_sweeps, resume_sweep, submit, sweep_status
from farm.terminal import say


@click.group("sweep")
def sweep_group() -> None:
    """Submit, inspect and cancel sweeps on the farm's queue."""


@sweep_group.command("submit")
@spec_options
@click.option("--force", is_flag=True, help="Rebuild and re-measure even if identical jobs finished before.")
@format_option(help="table: the sweep id on stdout, counts on stderr; json: one object on stdout.")
def submit_cmd(force, fmt, **spec_args):
    """Expand a sweep into jobs and enqueue them; prints the sweep id.

    Workers started with 'farm worker start' (here or on other hosts
    sharing the database and broker) pick the jobs up.
    """
    spec = spec_from_cli(**spec_args)
    submission = submit(spec, force=force)
    if fmt == "json":
        click.echo(to_json({"sweep_id": submission.sweep_id, "jobs": submission.jobs, "queued": submission.queued,
                            "reused": submission.reused, "unsupported": submission.unsupported,
                            "skipped": list(submission.skipped), "conversion": submission.conversion,
                            "search": spec.search.strategy if spec.search is not None else None,
                            "notes": list(submission.notes)}))  # the lines the table form says on stderr
        return
    if spec.search is not None:
        say(f"search {spec.search.strategy} over {submission.jobs} configurations, first step: {submission.queued} "
            f"queued, {submission.reused} reused, {submission.unsupported} pruned; the workers carry it on "
            f"as jobs finish (watch it with 'farm sweep drive {submission.sweep_id}')", err=True)
    else:
        say(f"{submission.jobs} jobs: {submission.queued} queued, {submission.reused} reused, "
            f"{submission.unsupported} unsupported", err=True)
    echo_submission_notes(submission)
    click.echo(submission.sweep_id)


def echo_submission_notes(submission) -> None:
    """What a submission converted, left out or could not reuse, on stderr: 'farm sweep submit' and 'farm run'
    say it alike."""
    if submission.conversion:
        from farm.sources import describe

        click.echo(describe(submission.conversion), err=True)
    for skipped in submission.skipped:
        say(f"skipped: {skipped}", err=True)
    for why, count in sorted(submission.not_reused.items()):
        say(f"not reused ({count} jobs): {why}", err=True)
    for note in submission.notes:
        say(note, err=True)


def _status_line(status: dict) -> str:
    counts = ", ".join(f"{v} {k}" for k, v in sorted(status["counts"].items()))
    return (f"{status['sweep_id']}  {status['name']}  {status['state']}  {status['finished']}/{status['total']}  "
            f"({counts})")


@sweep_group.command("status")
@click.argument("sweep_id")
@click.option("--watch", is_flag=True, help="Refresh until the sweep finishes.")
@format_option()
def status_cmd(sweep_id, watch, fmt):
    """Show how far a sweep has got, and which device classes its waiting
    jobs need when no live worker serves them."""
    while True:
        status = sweep_status(sweep_id)
        if fmt == "json":
            click.echo(to_json(status))
        else:
            say(_status_line(status))
            for line in search_lines(status.get("search") or {}):
                say(line)
            for wait in status["waiting_for"]:
                say(f"waiting: no live worker serves {wait['device_class']} with backend "
                    f"{wait['backend']}; start one with 'farm worker start' on a host that has both")
            if status.get("not_sent"):
                say(f"waiting: {status['not_sent']} jobs were never sent to the broker (their submit stopped "
                    f"before it sent them); a worker launcher sends them within FARM_STALE_S, or run "
                    f"'farm sweep resume {status['sweep_id']}'")
            if status.get("waiting_for_store"):
                say(f"waiting: the artifact store is unavailable ({status['waiting_for_store']}); "
                    f"workers wait for it and go on when it is back")
        if not watch or _settled(status):
            return
        time.sleep(2)


def _settled(status: dict) -> bool:
    if status.get("search"):
        return status["search"]["state"] == "finished"
    return status["finished"] == status["total"]


def search_lines(search: dict) -> list[str]:
    """The search part of 'farm sweep status': saving, what was pruned or
    skipped and why, the finals and the winners."""
    if not search:
        return []
    lines = [f"search: {search['strategy']} ({search['objective']}), {search['state']}: {search['saving']} "
             f"(budget {search['budget']}; over all steps: {search['reused']} reused, {search['pruned']} pruned, "
             f"{search['skipped']} skipped, {search['in_flight']} running)"]
    unit = "ms p50" if search["objective"] == "latency" else "samples/s"
    progress: dict[str, list] = {}
    for entry in search["history"]:
        if entry["best_so_far"] is not None:
            trail = progress.setdefault(entry["group"].split("|", 1)[0], [])
            if not trail or trail[-1][1] != entry["best_so_far"]:
                trail.append((entry["build"], entry["best_so_far"]))
    for device_class, trail in sorted(progress.items()):
        lines.append(f"  best so far on {device_class} ({unit}) when build N was decided: "
                     + ", ".join(f"#{n}: {value:.4g}" for n, value in trail[-8:]))
    for reason, count in sorted(search["reasons"].items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {count} {reason}")
    from farm.tuned import gain_line

    for finals in search["finals"]:
        lines.append(f"  finals {finals['id']} on {finals['device_class']}: {finals['status']}, "
                     f"{len(finals['jobs'])} candidates interleaved" + (f" ({finals['error'].strip().splitlines()[-1]})"
                                                                        if finals.get("error") else ""))
        lines += [f"    {gain_line(row)}" for row in finals.get("tuned", [])]
    for group, entry in sorted((search.get("result") or {}).items()):
        if "winner" in entry and entry["winner"] is None:  # the finals left nothing within the constraints
            lines.append(f"  no winner on {group.split('|', 1)[0]}: {entry['decided_by']}")
        elif "winner" in entry:
            tied = f", tied: {', '.join(entry['tied'])}" if entry.get("tied") else ""
            lines.append(f"  winner {group.split('|', 1)[0]}: {entry['winner']} ({entry['decided_by']}){tied}")
    return lines


@sweep_group.command("drive")
@click.argument("sweep_id")
@format_option()
def drive_cmd(sweep_id, fmt):
    """Drive a search sweep until it finishes: build what its strategy asks
    for, prune, run the finals. The search's state is in the database, so
    this also resumes a search whose coordinator died (any number of
    drivers may run at once; each step is taken once)."""
    from farm.search.driver import drive

    summary = drive(sweep_id)
    if fmt == "json":
        click.echo(to_json(summary))
        return
    for line in search_lines(summary):
        say(line)


@sweep_group.command("list")
@format_option()
def list_cmd(fmt):
    """List sweeps, oldest first."""
    sweeps = list_sweeps()
    if fmt == "json":
        click.echo(to_json(sweeps))
        return
    if not sweeps:
        click.echo("no sweeps")
        return
    for status in sweeps:
        status["progress"] = f"{status['finished']}/{status['total']}"
        status["jobs"] = ", ".join(f"{v} {k}" for k, v in sorted(status["counts"].items()))
    keys = ["sweep_id", "name", "model", "state", "progress", "jobs", "created_at"]
    click.echo(render_table(["sweep", "name", "model", "state", "finished", "jobs", "created"], keys, sweeps))


@sweep_group.command("cancel")
@click.argument("sweep_id")
@format_option()
def cancel_cmd(sweep_id, fmt):
    """Cancel a sweep's jobs that have not started (running ones finish).
    A sweep with nothing left to run is left unchanged."""
    result = cancel_sweep(sweep_id)
    if fmt == "json":
        click.echo(to_json(result))
    elif not result["changed"]:
        say(f"sweep {sweep_id} is already {result['state']}: nothing to cancel, nothing changed")
    else:
        running = f"; {result['running']} running jobs will finish" if result["running"] else ""
        say(f"cancelled {result['cancelled']} jobs of sweep {sweep_id}{running}")


@sweep_group.command("resume")
@click.argument("sweep_id")
@format_option()
def resume_cmd(sweep_id, fmt):
    """Re-enqueue what a sweep lost: pending jobs, running jobs whose worker
    died (quarantined as failed after FARM_MAX_ATTEMPTS deaths) and queued
    jobs whose message the broker no longer has (e.g. Redis restarted).
    Workers' launchers do the same every FARM_RECONCILE_S; duplicate
    deliveries are harmless: a job runs once."""
    result = resume_sweep(sweep_id)
    if fmt == "json":
        click.echo(to_json({"sweep_id": sweep_id, **result}))
        return
    again = len(result["requeued"]) + len(result["resent"])
    say(f"re-enqueued {result['enqueued'] + again} jobs of sweep {sweep_id} "
        f"({result['enqueued']} pending, {len(result['requeued'])} orphaned, "
        f"{len(result['resent'])} lost by the broker); quarantined {len(result['quarantined'])}")
    if sweep_status(sweep_id).get("search", {}).get("state") not in (None, "finished"):
        say(f"this sweep is a search: carry it on with 'farm sweep drive {sweep_id}'")
