"""The claim protocol: how a worker takes a job, and gives its device back.

The claim is the first of the two writes a job makes (the end is the
other: workers.job_end). The device row is marked busy with the job in the
same commit that makes the job running, so a reconciler that sees the job
running also sees who holds it (farm.reconcile); on PostgreSQL this is one
statement (workers.job_writes). A claim is retried while the database is
unreachable (farm.db.retry): the caller turns a lasting outage into
ClaimUnreachable.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from farm.capabilities import RUN
from farm.config import default_timeouts
from farm.db import Device, Job, Model, Search, Sweep, session_scope, statement_scope
from farm.db.clock import db_now_value
from farm.db.retry import retrying
from workers.job_writes import claim_on_device, claim_parameters, claim_statement

DISPLACED = "displaced"


class ClaimUnreachable(Exception):
    """The job table stayed unreachable before the job was claimed: the
    message goes back to the broker unacknowledged (the task rejects it)."""


@dataclass
class Claimed:
    attempt: int
    job: Job
    limits: dict[str, float]
    model_sha256: str
    artifact_sha256: str
    searched: bool = False  # the sweep is a search: a job's end may take its next step


def take(job_id: str, worker: str, device_id: int | None, phase: str = RUN) -> Claimed | str | None:
    """Mark the device busy with the job, claim the job and read what the
    job needs, in one transaction (on PostgreSQL one statement: one round
    trip per job). Of two workers racing for one job (a duplicate message),
    the guarded UPDATE lets exactly one match. Returns DISPLACED when
    another worker holds our device row, None when the job is not
    claimable (another worker has it, or it is finished)."""
    with statement_scope() as session:
        if device_id is not None and session.get_bind().dialect.name == "postgresql":
            job = _claim_on_device(session, job_id, worker, device_id, phase)
        else:
            job = _claim_in_transaction(session, job_id, worker, device_id, phase)
        if job is DISPLACED:
            return DISPLACED
        if job is None:
            if device_id is not None and session.scalar(select(Device.worker).where(Device.id == device_id)) != worker:
                return DISPLACED
            job = _claimed_before(session, job_id, worker)
            if job is None:
                return None
        return Claimed(job.attempts, job, *_sweep_facts(session, job.sweep_id))


def _claim_on_device(session, job_id: str, worker: str, device_id: int, phase: str) -> Job | None:
    """PostgreSQL: one autocommitted statement (workers.job_writes)."""
    return session.execute(claim_on_device(phase), claim_parameters(job_id, worker, device_id),
                           execution_options={"synchronize_session": False}).scalar_one_or_none()


def _claim_in_transaction(session, job_id: str, worker: str, device_id: int | None, phase: str):
    """SQLite (or no device row): the device marked busy, then the guarded
    claim; rolled back if the claim did not match."""
    if device_id is not None:
        busy = (update(Device).where(Device.id == device_id, Device.worker == worker)
                .values(current_job_id=job_id, last_heartbeat=db_now_value(session)))
        if session.execute(busy).rowcount != 1:
            return DISPLACED
    job = session.execute(claim_statement(job_id, worker, device_id, phase).returning(Job),
                          execution_options={"synchronize_session": False}).scalar_one_or_none()
    if job is None:
        session.rollback()  # the device stays as it was
    return job


def _claimed_before(session, job_id: str, worker: str) -> Job | None:
    """Our own claim of this job committed on an attempt whose answer the
    connection lost (this worker runs one job at a time, so a job running
    under its name that it is not running is that one): carry on with it
    rather than leave it running under a worker that moved on."""
    job = session.scalar(select(Job).where(Job.id == job_id, Job.status == "running", Job.worker == worker))
    if job is not None and job.device_id is not None:
        session.execute(update(Device).where(Device.id == job.device_id, Device.worker == worker)
                        .values(current_job_id=job_id))
    return job


_sweeps: dict[str, tuple[dict[str, float], str, str, bool]] = {}


def _sweep_facts(session, sweep_id: str) -> tuple[dict[str, float], str, str, bool]:
    """(time limits, model sha256, model store key, is a search) of a
    sweep: fixed at submit time (a search's row is written with its sweep),
    so read once per worker process and sweep."""
    facts = _sweeps.get(sweep_id)
    if facts is None:
        spec, model_sha, artifact_sha, search = session.execute(
            select(Sweep.spec, Model.sha256, Model.artifact_sha256, Search.sweep_id)
            .join(Model, Model.id == Sweep.model_id).outerjoin(Search, Search.sweep_id == Sweep.id)
            .where(Sweep.id == sweep_id)).one()
        limits = {**default_timeouts(), **((spec or {}).get("timeouts") or {})}
        facts = _sweeps[sweep_id] = (limits, model_sha, artifact_sha or model_sha, search is not None)
    return facts


def shutting_down() -> bool:
    """Celery is stopping this worker: a message we could not claim goes
    back to the broker now rather than after the whole retry window."""
    from celery.worker import state

    return bool(state.should_stop or state.should_terminate)


def mark_idle(session, job_id: str, worker: str, device_id: int | None) -> None:
    """The device is idle again (part of the transaction that ends the job)."""
    if device_id is not None:
        session.execute(update(Device).where(Device.id == device_id, Device.worker == worker,
                                             Device.current_job_id == job_id).values(current_job_id=None))


def clear_device(job_id: str, worker: str, device_id: int | None) -> None:
    """Mark the device idle on its own (a job that ended without an end write of ours)."""
    def transaction():
        with session_scope(pre_ping=False) as session:
            mark_idle(session, job_id, worker, device_id)

    retrying(transaction, f"marking the device idle after job {job_id}")
