from __future__ import annotations

import click

from farm.backends import require_local
from farm.cli.dialect import format_option
from farm.cli.local_workers import LocalWorkers, Stopped, register_local_devices, wait_for_sweep
from farm.cli.options import spec_from_cli, spec_options
from farm.cli.output import table, to_json
from farm.cli.progress import SweepProgress
from farm.cli.sweep_cmd import echo_submission_notes
from farm.devices import hostname
from farm.errors import UserError
from farm.reports import job_rows
from farm.service import submit, validate
from farm.terminal import say


@click.command("run")
@spec_options
@click.option("--force", is_flag=True, help="Rebuild and re-measure even if identical jobs finished before.")
@format_option()
def run_cmd(force, fmt, **spec_args):
    """Run a sweep here, start to finish: submit it, start local workers
    (one per device), show progress, and print the comparison table.

    SPEC_FILE is a YAML sweep spec (see 'farm spec schema'), or give
    --model and the other flags instead.
    """
    spec = spec_from_cli(**spec_args)
    for backend in spec.backends:
        require_local(backend)
    validate(spec)
    register_local_devices()
    submission = submit(spec, force=force, host=hostname())
    if spec.search is not None:  # the submission is the search's first step; the search line counts all steps
        say(f"sweep {submission.sweep_id} ({spec.name}): search {spec.search.strategy} over {submission.jobs} "
            f"configurations, first step: {submission.reused} reused, {submission.unsupported} pruned, "
            f"{submission.queued} to run", err=True)
    else:
        say(f"sweep {submission.sweep_id} ({spec.name}): {submission.jobs} jobs, {submission.reused} reused, "
            f"{submission.unsupported} unsupported, {submission.queued} to run", err=True)
    echo_submission_notes(submission)
    try:
        _run_here(spec, submission)
    except KeyboardInterrupt as exc:
        how = f"stopped by {exc.signal_name}" if isinstance(exc, Stopped) else "interrupted"
        raise UserError(f"{how}; local workers stopped. Unfinished jobs stay queued: 'farm sweep resume "
                        f"{submission.sweep_id}' with 'farm worker start' continues, 'farm sweep cancel "
                        f"{submission.sweep_id}' drops them") from None
    rows = job_rows(submission.sweep_id)
    click.echo(to_json(rows) if fmt == "json" else table(rows))
    if fmt != "json":
        from farm.reports.summary import summary_sentences

        for sentence in summary_sentences(submission.sweep_id):  # under the table, on its stream
            say(sentence)


def _run_here(spec, submission) -> None:
    """Local workers until the sweep (or search) is done."""
    if spec.search is not None:
        from farm.cli.sweep_cmd import search_lines
        from farm.search.driver import drive

        classes = {c.split("|", 1)[0] for c in _search_groups(submission.sweep_id)}
        selector = "all" if any(c.startswith("gpu.") for c in classes) else "cpu"
        with LocalWorkers(selector) as workers:
            try:
                summary = drive(submission.sweep_id, alive=workers.alive,
                                show=lambda s: say(f"search: {s['state']}, {s['saving']}, {s['in_flight']} "
                                                   f"running, {s['pruned']} pruned", err=True))
            except UserError:
                if workers.alive():
                    raise
                raise UserError(f"{workers.failure()}; run 'farm sweep drive {submission.sweep_id}' to carry on "
                                "once workers are back") from None
        for line in search_lines(summary):
            say(line, err=True)
    elif submission.queued:
        classes = {row["device_class"] for row in job_rows(submission.sweep_id)}
        selector = "all" if any(c.startswith("gpu.") for c in classes) else "cpu"
        with LocalWorkers(selector) as workers, SweepProgress() as progress:
            wait_for_sweep(submission.sweep_id, workers, progress)


def _search_groups(sweep_id: str) -> set[str]:
    from sqlalchemy import select

    from farm.db import SearchCandidate, session_scope

    with session_scope() as session:
        return set(session.scalars(select(SearchCandidate.group_key).where(SearchCandidate.sweep_id == sweep_id)))
