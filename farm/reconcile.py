"""Bring the broker back in line with the job table (the source of truth).

A ``running`` job is orphaned when its worker is gone: the device row's
heartbeat is stale, another worker now holds the row (the old one died and
was restarted), or the row's current job is something else. A worker on
this host is looked at directly (farm.liveness): its live process keeps its
job however late its heartbeat, a dead one loses it at once. Orphans go back
to ``queued`` with a fresh message, or, once their worker has died
``FARM_MAX_ATTEMPTS`` times (attempts are counted in the job table at each
claim), are quarantined as ``failed`` with the last reason.

A ``queued`` job older than ``FARM_STALE_S`` whose message is in neither the
broker's ready queue nor a live worker's hands was lost (Redis restarted, a
worker died holding it) and is sent again. A ``pending`` job older than that
was never sent (its ``farm sweep submit`` was killed between its commit and
its messages): it is marked queued and sent, as ``farm sweep resume`` would. A duplicate is harmless: the
claim is a guarded UPDATE, so a job runs once.

Every state change is a compare-and-set UPDATE, so any number of
reconcilers (one per launcher, plus ``farm sweep resume``) can run at once:
only the one whose UPDATE matched sends the message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from farm.config import max_attempts, stale_s
from farm.db import Device, Job, session_scope, utcnow
from farm.db.clock import db_now
from farm.liveness import local_verdict
from farm.routing import Route, route

log = logging.getLogger(__name__)


@dataclass
class Report:
    requeued: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    unsent: list[str] = field(default_factory=list)  # pending jobs whose submit never sent them

    def __bool__(self) -> bool:
        return bool(self.requeued or self.quarantined or self.resent or self.unsent)


@dataclass(frozen=True)
class Orphan:
    job_id: str
    worker: str | None
    attempts: int
    route: Route  # where its message goes and which phase (farm.routing.route)
    why: str


def _alive(device: Device | None, cutoff: datetime) -> bool:
    if not (device and device.worker):
        return False
    local = local_verdict(device.worker, device.uuid)
    if local is not None:
        return local
    return bool(device.last_heartbeat and device.last_heartbeat >= cutoff)


def orphan_reason(job: Job, device: Device | None, cutoff: datetime) -> str | None:
    """Why a running job has no live worker, or None if its worker lives."""
    if device is None:
        return f"its worker {job.worker} has no device row"
    if device.worker != job.worker:
        return f"its worker {job.worker} is gone (the device is now served by {device.worker})"
    if not _alive(device, cutoff):
        if local_verdict(device.worker, device.uuid) is False:
            return f"its worker {job.worker} is gone (no such process on {device.host})"
        return f"its worker {job.worker} stopped heartbeating"
    if device.current_job_id != job.id:
        return f"its worker {job.worker} is no longer running it"
    return None


def find_orphans(sweep_id: str | None = None, worker: str | None = None) -> list[Orphan]:
    with session_scope() as session:
        cutoff = db_now(session) - timedelta(seconds=stale_s())
        # Jobs first, devices second: a job claimed after this read is not
        # looked at, and a job read as running had its worker's current_job
        # set before the claim, so the later device read cannot miss it.
        query = select(Job).where(Job.status == "running")
        if sweep_id:
            query = query.where(Job.sweep_id == sweep_id)
        if worker:
            query = query.where(Job.worker == worker)
        jobs = list(session.scalars(query))
        devices = {d.id: d for d in session.scalars(select(Device))} if jobs else {}
        orphans = []
        for job in jobs:
            why = orphan_reason(job, devices.get(job.device_id), cutoff)
            if why:
                orphans.append(Orphan(job.id, job.worker, job.attempts, route(job), why))
        return orphans


def recover(orphan: Orphan, limit: int | None = None) -> str | None:
    """Requeue or quarantine one orphan; returns 'requeued', 'quarantined'
    or None when another reconciler (or the worker itself) got there first."""
    limit = limit or max_attempts()
    quarantine = orphan.attempts >= limit
    guard = (Job.id == orphan.job_id, Job.status == "running", Job.attempts == orphan.attempts,
             Job.worker == orphan.worker)
    reason = f"attempt {orphan.attempts} lost: {orphan.why}"
    if quarantine:
        values = {"status": "failed", "finished_at": utcnow(),
                  "error": f"quarantined after {orphan.attempts} attempts whose worker died; last: {orphan.why}"}
    else:
        values = {"status": "queued", "queued_at": utcnow(), "worker": None, "error": reason}
    with session_scope() as session:
        if session.execute(update(Job).where(*guard).values(**values)).rowcount != 1:
            return None
    log.warning("job %s %s: %s", orphan.job_id, "quarantined" if quarantine else "requeued", orphan.why)
    return "quarantined" if quarantine else "requeued"


# Statuses whose job has a message waiting in the broker ("built": in its
# device class's queue, for measurement).
WAITING = ("queued", "built")


def _lost_candidates(sweep_id: str | None, grace_s: float) -> list[tuple[str, Route]]:
    cutoff = utcnow() - timedelta(seconds=grace_s)
    with session_scope() as session:
        live_cutoff = db_now(session) - timedelta(seconds=stale_s())
        query = select(Job).where(Job.status.in_(WAITING), or_(Job.queued_at.is_(None), Job.queued_at <= cutoff))
        if sweep_id:
            query = query.where(Job.sweep_id == sweep_id)
        jobs = [(job.id, route(job)) for job in session.scalars(query)]
        held = {d.current_job_id for d in session.scalars(select(Device)) if _alive(d, live_cutoff)}
    return [(job_id, where) for job_id, where in jobs if job_id not in held]


def _mark_resent(job_id: str, grace_s: float) -> bool:
    cutoff = utcnow() - timedelta(seconds=grace_s)
    with session_scope() as session:
        result = session.execute(
            update(Job).where(Job.id == job_id, Job.status.in_(WAITING),
                              or_(Job.queued_at.is_(None), Job.queued_at <= cutoff))
            .values(queued_at=utcnow()))
        return result.rowcount == 1


def lost_messages(sweep_id: str | None = None, grace_s: float | None = None,
                  resend_unknown: bool = False) -> list[tuple[str, Route]]:
    """Queued jobs with no message left, each claimed for re-sending."""
    from farm.broker_state import ready_jobs

    grace_s = stale_s() if grace_s is None else grace_s
    candidates = _lost_candidates(sweep_id, grace_s)
    if not candidates:
        return []
    ready = ready_jobs({where.queue for _, where in candidates})
    if ready is None and not resend_unknown:
        return []  # a broker we cannot look into keeps its own messages
    lost = [(j, cls) for j, cls in candidates if ready is None or j not in ready]
    return [(j, cls) for j, cls in lost if _mark_resent(j, grace_s)]


def never_sent(sweep_id: str | None = None, grace_s: float | None = None) -> list[tuple[str, Route]]:
    """Pending jobs made more than ``grace_s`` ago, each marked queued (a
    guarded UPDATE: one reconciler wins each) for sending."""
    grace_s = stale_s() if grace_s is None else grace_s
    cutoff = utcnow() - timedelta(seconds=grace_s)
    with session_scope() as session:
        query = select(Job).where(Job.status == "pending", Job.created_at <= cutoff)
        if sweep_id:
            query = query.where(Job.sweep_id == sweep_id)
        jobs = [(job.id, route(job)) for job in session.scalars(query.order_by(Job.seq))]
        if not jobs:
            return []
        marked = set(session.scalars(
            update(Job).where(Job.id.in_([j for j, _ in jobs]), Job.status == "pending")
            .values(status="queued", queued_at=utcnow()).returning(Job.id)))
    return [(job_id, where) for job_id, where in jobs if job_id in marked]


def reconcile(sweep_id: str | None = None, grace_s: float | None = None, resend_unknown: bool = False,
              orphans: list[Orphan] | None = None) -> Report:
    """One pass. Safe to run anywhere, any number of times, concurrently."""
    from farm.queue import send_jobs

    report, to_send = Report(), []
    if orphans is None:
        unsent = never_sent(sweep_id, grace_s)
        report.unsent = [j for j, _ in unsent]
        to_send.extend(unsent)
    for orphan in find_orphans(sweep_id) if orphans is None else orphans:
        outcome = recover(orphan)
        if outcome == "requeued":
            report.requeued.append(orphan.job_id)
            to_send.append((orphan.job_id, orphan.route))
        elif outcome == "quarantined":
            report.quarantined.append(orphan.job_id)
    resent = lost_messages(sweep_id, grace_s, resend_unknown)
    report.resent = [j for j, _ in resent]
    # A send that fails leaves the job queued without a message: the next
    # pass finds it again once grace_s has passed.
    send_jobs(to_send + resent)
    return report


def worker_exited(worker: str, how: str) -> Report:
    """The launcher saw ``worker`` exit: recover its running job at once
    instead of waiting for its heartbeat to go stale."""
    orphans = [Orphan(o.job_id, o.worker, o.attempts, o.route, f"its worker {worker} {how}")
               for o in _running_of(worker)]
    return reconcile(orphans=orphans)


def _running_of(worker: str) -> list[Orphan]:
    with session_scope() as session:
        jobs = session.scalars(select(Job).where(Job.status == "running", Job.worker == worker))
        return [Orphan(j.id, j.worker, j.attempts, route(j), "") for j in jobs]
