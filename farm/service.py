"""The library API behind the CLI: submit, inspect and cancel sweeps.

Everything the CLI does is a call here; nothing here prints.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select, update

from farm.backends import backend_config
from farm.config import stale_s
from farm.db import FINAL_STATES, Device, Job, Sweep, session_scope, utcnow
from farm.db.clock import db_now
from farm.errors import SpecError, UserError
from farm.model_info import SYNTHETIC_DTYPES, ModelInfo
from farm.planner import (ClassEnvironments, Submission, create_sweep, enqueue_pending, get_sweep, new_id,
                          new_job, plan_sweep, result_environment)
from farm.routing import needs
from farm.spec import SweepSpec
from farm.store import open_store

__all__ = ["ClassEnvironments", "Submission", "enqueue_pending", "new_id", "result_environment", "submit",
           "validate"]

WAITING = ("pending", "queued", "built")  # jobs that still wait for a worker


def validate(spec: SweepSpec) -> ModelInfo:
    """Everything that can be checked before touching the database."""
    from farm.accuracy_spec import check_accuracy_spec
    from farm.quantized import check_quantized_precisions
    from farm.queue import check_time_limits
    from farm.sources import open_model

    model = open_model(spec.model, spec.data, _parity_shapes(spec))
    check_time_limits(spec.timeouts)
    check_accuracy_spec(spec, model)
    check_quantized_precisions(spec, model)
    for info in model.inputs:
        if info.dtype not in SYNTHETIC_DTYPES and spec.data is None:
            raise SpecError(f"model input '{info.name}' has type {info.dtype}, for which the farm cannot make "
                            f"synthetic inputs; give real samples with 'data: samples.npz' in the spec")
    for index, name in enumerate(spec.backends):
        backend_config(name).from_dict(spec.build.get(name), where=f"build.{name}")
        if spec.backends.count(name) > 1:
            raise SpecError(f"spec field 'backends[{index}]': {name!r} listed twice")
    unknown = sorted(set(spec.build) - set(spec.backends))
    if unknown:
        raise SpecError(f"spec field 'build.{unknown[0]}': not one of the sweep's backends ({', '.join(spec.backends)})")
    return model


def _parity_shapes(spec: SweepSpec) -> dict[str, list[int]] | None:
    """The first profile's opt shapes: what a converted model's parity check runs at."""
    return {name: list(rng.opt) for name, rng in spec.profiles[0].inputs.items()} if spec.profiles else None


def submit(spec: SweepSpec, force: bool = False, host: str | None = None, enqueue: bool = True) -> Submission:
    """Plan (farm/planner.py: every check and limit, for a search too), then
    write the sweep's rows and send its jobs; a search takes its first step."""
    model = validate(spec)
    if enqueue:
        from farm.queue import check_broker

        check_broker()
    if spec.search is not None:
        from farm.search.driver import submit_search

        return _noted(replace(submit_search(spec, model, host=host, enqueue=enqueue, force=force), conversion=model.source),
                      spec)
    with session_scope() as session:
        plans = plan_sweep(spec, model, session, host=host)
        sweep = create_sweep(session, spec, model)
        counts, not_reused = Counter(), Counter()
        environments = ClassEnvironments(session)
        for seq, plan in enumerate(plans.plans):
            job, why = new_job(session, sweep.id, seq, plan, force, environments)
            counts[job.status] += 1
            if why:
                not_reused[why] += 1
            session.add(job)
        sweep_id, total = sweep.id, len(plans.plans)
    queued = enqueue_pending(sweep_id) if enqueue else 0
    return _noted(Submission(sweep_id, total, counts["done"], queued, counts["unsupported"], plans.skipped,
                             dict(not_reused), model.source), spec)


def _noted(submission: Submission, spec: SweepSpec) -> Submission:
    """The submission with the one-line note a spec deserves (int8/fp8 without data)."""
    from farm.accuracy_spec import synthetic_note

    note = synthetic_note(spec)
    return replace(submission, notes=[note]) if note else submission


def sweep_status(sweep_id: str) -> dict:
    with session_scope() as session:
        sweep = get_sweep(session, sweep_id)
        counts = Counter(job.status for job in sweep.jobs)
        waiting = sorted(_waiting(sweep.jobs, live_queues(session)))
        total = len(sweep.jobs)
        finished = sum(counts[s] for s in FINAL_STATES)
        from farm.search.summary import is_searching

        searching = is_searching(session, sweep_id)
        unserved = {cls for cls, _ in waiting}
        # Built engines whose device class no live worker serves: measured
        # when one joins; nothing more happens until then.
        awaiting = sum(1 for j in sweep.jobs if j.status == "built" and j.device_class in unserved)
        state = _sweep_state(counts, total, sweep.cancelled, awaiting)
        state = searching if searching and state != "cancelled" else state
        status = {"sweep_id": sweep.id, "name": sweep.name, "model": sweep.model.name,
                  "state": state, "total": total, "finished": finished,
                  "awaiting_device": awaiting, "settled": finished + awaiting,
                  "counts": dict(counts),
                  "waiting_for_device_classes": sorted({cls for cls, _ in waiting}),
                  "waiting_for": [{"device_class": cls, "backend": backend} for cls, backend in waiting],
                  "waiting_for_store": _store_problem() if finished < total else None,
                  # Never handed to the broker (a submit stopped between its commit and its messages):
                  # a launcher's reconcile pass sends them after FARM_STALE_S, 'farm sweep resume' at once.
                  "not_sent": counts["pending"],
                  "created_at": sweep.created_at.isoformat(timespec="seconds")}
    from farm.search.summary import search_summary

    summary = search_summary(sweep_id)
    if summary:
        status["search"] = summary
    return status


def _store_problem() -> str | None:
    """Why the artifact store cannot be used now (workers wait for it), or None."""
    try:
        open_store().check()
    except UserError as exc:
        return str(exc)
    return None


def _sweep_state(counts: Counter, total: int, cancelled: bool, awaiting: int = 0) -> str:
    if cancelled:
        return "cancelled"
    finished = sum(counts[s] for s in FINAL_STATES)
    if finished == total:
        return "finished"
    if finished + awaiting == total:
        return "awaiting devices"
    if counts["running"] or finished:
        return "running"
    return "queued" if counts["queued"] or counts["built"] else "pending"


def _waiting(jobs, live: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """(device class, backend) pairs that waiting jobs need and no live
    worker serves (farm.routing.needs decides what a job needs)."""
    needed = set()
    for job in jobs:
        if job.status not in WAITING:
            continue
        device_class, backend = needs(job)
        served = (any(b == backend for _, b in live) if device_class == "any device (build)"
                  else (device_class, backend) in live)
        if not served:
            needed.add((device_class, backend))
    return needed


def live_queues(session) -> set[tuple[str, str]]:
    """(device class, backend) pairs some live worker consumes."""
    cutoff = db_now(session) - timedelta(seconds=stale_s())
    rows = session.execute(select(Device.device_class, Device.versions).where(Device.last_heartbeat >= cutoff))
    return {(cls, backend) for cls, versions in rows for backend in (versions or {}).get("backends", [])}


def list_sweeps() -> list[dict]:
    with session_scope() as session:
        ids = list(session.scalars(select(Sweep.id).order_by(Sweep.created_at)))
    return [sweep_status(sweep_id) for sweep_id in ids]


def cancel_sweep(sweep_id: str) -> dict:
    """Cancel jobs not yet running; running ones finish (their result is kept).

    A sweep with nothing left to run (finished, or cancelled before) is left
    as it is: ``changed`` is False and ``state`` says why.
    """
    from farm.search.summary import is_searching

    with session_scope() as session:
        sweep = get_sweep(session, sweep_id)
        counts = Counter(job.status for job in sweep.jobs)
        state = _sweep_state(counts, len(sweep.jobs), sweep.cancelled)
        searching = is_searching(session, sweep_id) and not sweep.cancelled  # a search may add jobs yet
        if state in ("finished", "cancelled") and not (counts["pending"] or counts["queued"] or searching):
            return {"sweep_id": sweep_id, "changed": False, "cancelled": 0, "state": state,
                    "running": counts["running"]}
        sweep.cancelled = True
        result = session.execute(update(Job).where(Job.sweep_id == sweep_id, Job.status.in_(WAITING))
                                 .values(status="cancelled", finished_at=utcnow()))
        return {"sweep_id": sweep_id, "changed": True, "cancelled": result.rowcount, "state": "cancelled",
                "running": counts["running"]}


def running_jobs(sweep_id: str) -> list[dict]:
    """A sweep's running jobs with the worker running each (oldest first); ``settings``
    names their streams, serving knobs and build knobs (farm.reports.plots.settings_label)."""
    from farm.reports.plots import settings_label

    with session_scope() as session:
        jobs = session.scalars(select(Job).where(Job.sweep_id == sweep_id, Job.status == "running")
                               .order_by(Job.started_at, Job.seq)).all()
        return [{"job_id": j.id, "backend": j.backend, "precision": j.precision, "batch_size": j.batch_size,
                 "profile": j.profile, "settings": settings_label(j.config), "device_class": j.device_class,
                 "worker": j.worker,
                 "started_at": j.started_at.isoformat(timespec="seconds") if j.started_at else None}
                for j in jobs]


def resume_sweep(sweep_id: str) -> dict:
    """Send pending jobs, recover orphaned running ones and re-send queued
    ones whose message the broker lost (all of them when the broker cannot
    be looked into). Duplicate deliveries are harmless: a job runs once."""
    from farm.queue import check_broker
    from farm.reconcile import reconcile

    status = sweep_status(sweep_id)  # unknown ids fail here with a clear error
    check_broker()  # a broker that is down: one line, nothing changed
    sent = enqueue_pending(sweep_id)
    try:
        report = reconcile(sweep_id, grace_s=0, resend_unknown=True)
    except Exception as exc:
        if not _is_broker_error(exc):
            raise
        # The broker went away after check_broker: jobs it was sending are
        # queued without a message, which the next resume (or any
        # launcher's reconcile pass) sends again.
        raise UserError(f"the broker stopped answering ({exc}); run 'farm sweep resume {sweep_id}' "
                        f"once it is back") from None
    if status.get("search"):
        from farm.search.driver import advance

        advance(sweep_id)  # one step (re-sends lost finals); 'farm sweep drive' carries it to the end
    return {"enqueued": sent, "requeued": report.requeued, "quarantined": report.quarantined,
            "resent": report.resent}


def _is_broker_error(error: BaseException) -> bool:
    from kombu.exceptions import OperationalError as BrokerError

    return isinstance(error, (BrokerError, ConnectionError, OSError))


def device_rows() -> list[dict]:
    """Registered devices with their worker, current job, heartbeat and
    versions; ``live`` when a worker holds the device and beat recently."""
    with session_scope() as session:
        rows, now = [], db_now(session)
        for d in session.scalars(select(Device).order_by(Device.host, Device.kind, Device.index)):
            age = (now - d.last_heartbeat).total_seconds() if d.last_heartbeat else None
            versions = d.versions or {}
            known = versions.get("libraries") or versions.get("backend_versions") or {}  # libraries: workers/discovery.py
            rows.append({"uuid": d.uuid, "kind": d.kind, "name": d.name, "device_class": d.device_class,
                         "host": d.host, "index": d.index, "compute_capability": d.compute_capability,
                         "memory_mb": d.memory_mb, "driver_version": d.driver_version, "worker": d.worker,
                         "current_job": d.current_job_id, "heartbeat_age_s": age,
                         "last_heartbeat": d.last_heartbeat.isoformat(timespec="seconds") if d.last_heartbeat
                         else None, "versions": versions,
                         "backends": ", ".join(f"{n} {known[n]}" if n in known else n
                                               for n in versions.get("backends") or []),
                         "live": d.worker is not None and age is not None and age < stale_s()})
        return rows
