from __future__ import annotations

import time

import click

from farm.cli.options import spec_from_cli, spec_options
from farm.cli.output import to_json
from farm.service import cancel_sweep, list_sweeps, resume_sweep, submit, sweep_status


@click.group("sweep")
def sweep_group() -> None:
    """Submit, inspect and cancel sweeps on the farm's queue."""


@sweep_group.command("submit")
@spec_options
@click.option("--force", is_flag=True, help="Rebuild and re-measure even if identical jobs finished before.")
def submit_cmd(force, **spec_args):
    """Expand a sweep into jobs and enqueue them; prints the sweep id.

    Workers started with 'farm worker start' (here or on other hosts
    sharing the database and broker) pick the jobs up.
    """
    submission = submit(spec_from_cli(**spec_args), force=force)
    click.echo(f"{submission.jobs} jobs: {submission.queued} queued, {submission.reused} reused, "
               f"{submission.unsupported} unsupported", err=True)
    for skipped in submission.skipped:
        click.echo(f"skipped: {skipped}", err=True)
    click.echo(submission.sweep_id)


def _status_line(status: dict) -> str:
    counts = ", ".join(f"{v} {k}" for k, v in sorted(status["counts"].items()))
    return f"{status['sweep_id']}  {status['name']}  {status['state']}  {status['finished']}/{status['total']}  ({counts})"


@sweep_group.command("status")
@click.argument("sweep_id")
@click.option("--watch", is_flag=True, help="Refresh until the sweep finishes.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def status_cmd(sweep_id, watch, fmt):
    """Show how far a sweep has got, and which device classes its waiting
    jobs need when no live worker serves them."""
    while True:
        status = sweep_status(sweep_id)
        if fmt == "json":
            click.echo(to_json(status))
        else:
            click.echo(_status_line(status))
            for wait in status["waiting_for"]:
                click.echo(f"waiting: no live worker serves {wait['device_class']} with backend "
                           f"{wait['backend']}; start one with 'farm worker start' on a host that has both")
        if not watch or status["finished"] == status["total"]:
            return
        time.sleep(2)


@sweep_group.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_cmd(fmt):
    """List sweeps, oldest first."""
    sweeps = list_sweeps()
    if fmt == "json":
        click.echo(to_json(sweeps))
        return
    for status in sweeps:
        click.echo(_status_line(status))


@sweep_group.command("cancel")
@click.argument("sweep_id")
def cancel_cmd(sweep_id):
    """Cancel a sweep's jobs that have not started (running ones finish)."""
    count = cancel_sweep(sweep_id)
    click.echo(f"cancelled {count} jobs of sweep {sweep_id}")


@sweep_group.command("resume")
@click.argument("sweep_id")
def resume_cmd(sweep_id):
    """Re-enqueue what a sweep lost: pending jobs, running jobs whose worker
    died (quarantined as failed after FARM_MAX_ATTEMPTS deaths) and queued
    jobs whose message the broker no longer has (e.g. Redis restarted).
    Workers' launchers do the same every FARM_RECONCILE_S; duplicate
    deliveries are harmless: a job runs once."""
    result = resume_sweep(sweep_id)
    again = len(result["requeued"]) + len(result["resent"])
    click.echo(f"re-enqueued {result['enqueued'] + again} jobs of sweep {sweep_id} "
               f"({result['enqueued']} pending, {len(result['requeued'])} orphaned, "
               f"{len(result['resent'])} lost by the broker); quarantined {len(result['quarantined'])}")
