"""Run one job: claim it, build, check accuracy, measure, and record the
result in one transaction. Called by the Celery task with a job id; safe to
call twice for the same id (the claim is a guarded status transition).

Two writes per job touch the database: the claim (device busy, job
running, in one commit: workers.claim) and the end (result, job status,
device idle, in one commit: workers.job_end); on PostgreSQL each is one
statement (workers.job_writes). Both are retried while the database is
unreachable (farm.db.retry), so an outage neither loses a result nor leaves
a job running under a worker that has moved on. Between them runs the job
pipeline (workers.pipeline); workers.measurement_row maps its outcome to
the measurements table.
"""

from __future__ import annotations

import logging

from farm.capabilities import RUN
from farm.db import FINAL_STATES
from farm.db.retry import DatabaseUnavailable, retrying
from workers import phases
from workers.backends.base import DeviceContext
from workers.claim import DISPLACED, ClaimUnreachable, Claimed, shutting_down, take
from workers.pipeline import run_claimed

log = logging.getLogger(__name__)


def execute(job_id: str, worker: str, device: DeviceContext, device_id: int | None, phase: str | None = None) -> str:
    """Run the phase the message asks for (farm.routing decided it; a
    message without one runs the job whole); returns its status ('skipped'
    when it was not claimable, DISPLACED when our device row is someone
    else's). On return the device row no longer names the job."""
    phase = phase or RUN
    try:
        claimed = retrying(lambda: take(job_id, worker, device_id, phase), f"claiming job {job_id}",
                           stop=shutting_down)
    except DatabaseUnavailable as exc:
        raise ClaimUnreachable(str(exc)) from exc
    phases.lap("claim")
    if claimed is None:
        return "skipped"
    if claimed == DISPLACED:
        return DISPLACED
    assert isinstance(claimed, Claimed)
    status = run_claimed(claimed, worker, device, device_id, phase)
    if claimed.searched and status in FINAL_STATES:
        advance_search(job_id=job_id)
    return status


def advance_search(job_id: str | None = None, finals_id: str | None = None) -> None:
    """The search this job (or finals) belongs to takes its next step
    (farm.search.hook.advance_after). A failure here fails no job: the
    result is stored, and the next completion, ``farm sweep drive`` or
    ``farm sweep resume`` takes the step."""
    from farm.search.hook import advance_after

    try:
        advance_after(job_id=job_id, finals_id=finals_id)
    except Exception:
        log.warning("could not advance the search of %s", job_id or f"finals {finals_id}", exc_info=True)
