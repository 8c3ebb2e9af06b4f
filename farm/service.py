"""The library API behind the CLI: submit, inspect and cancel sweeps.

Everything the CLI does is a call here; nothing here prints.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import timedelta

from sqlalchemy import select, update

from farm.backends import backend_config
from farm.capabilities import describe
from farm.config import stale_s
from farm.db import FINAL_STATES, Device, Job, Measurement, Model, Sweep, session_scope, utcnow
from farm.db.clock import db_now
from farm.devices import resolve_device_classes
from farm.errors import NotFoundError, SpecError, UserError
from farm.expand import JobPlan, expand
from farm.input_data import check_data, read_data
from farm.limits import check_plans
from farm.model_info import SYNTHETIC_DTYPES, ModelInfo, read_model
from farm.routing import needs, route
from farm.spec import SweepSpec
from farm.store import open_store

WAITING = ("pending", "queued", "built")  # jobs that still wait for a worker


@dataclass
class Submission:
    sweep_id: str
    jobs: int
    reused: int
    queued: int
    unsupported: int
    skipped: list[str] = field(default_factory=list)
    not_reused: dict[str, int] = field(default_factory=dict)  # why an earlier identical result was not reused -> jobs


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def validate(spec: SweepSpec) -> ModelInfo:
    """Everything that can be checked before touching the database."""
    from farm.queue import check_time_limits

    model = read_model(spec.model)
    check_time_limits(spec.timeouts)
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


def _compatible(plans: list[JobPlan]) -> tuple[list[JobPlan], list[str]]:
    """Drop (backend, device kind) pairs the backend cannot measure on
    (precisions it lacks stay, as ``unsupported`` jobs that say so)."""
    kept, skipped = [], set()
    for plan in plans:
        caps = backend_config(plan.backend).capabilities()
        if plan.device_class.split(".", 1)[0] in caps.device_kinds:
            kept.append(plan)
        else:
            skipped.add(f"{plan.backend} on {plan.device_class} ({plan.backend} runs on {', '.join(caps.device_kinds)})")
    return kept, sorted(skipped)


def _with_data(plans: list[JobPlan], data_sha256: str) -> list[JobPlan]:
    """The data file changes accuracy and timing inputs, so it is part of
    each job's configuration (and key)."""
    return [replace(plan, config={**plan.config, "data_sha256": data_sha256}) for plan in plans]


def _upsert_model(session, model: ModelInfo) -> Model:
    """Insert-or-get: shells submitting the same new model at once all get
    the one row (farm.db.upsert), none an IntegrityError."""
    from farm.db.upsert import insert_ignoring_duplicates

    store = open_store()
    row = session.scalar(select(Model).where(Model.sha256 == model.sha256))
    if row is None:
        key = store.put_file(model.path)
        values = {"sha256": model.sha256, "name": model.path.name, "path": str(model.path),
                  "size_bytes": model.size_bytes, "inputs": [i.to_json() for i in model.inputs],
                  "artifact_sha256": key}
        session.execute(insert_ignoring_duplicates(session, Model, values, "sha256"))
        row = session.scalar(select(Model).where(Model.sha256 == model.sha256))
    else:
        # Verified, not just present: a missing object (a new store) is uploaded again, a corrupt one replaced.
        store.put_file(model.path)
    return row


def _finished_twins(session, key: str) -> list[Job]:
    return list(session.scalars(
        select(Job).where(Job.key == key, Job.status == "done", Job.result_job_id.is_(None))
        .order_by(Job.finished_at.desc()).limit(20)
    ))


def submit(spec: SweepSpec, force: bool = False, host: str | None = None, enqueue: bool = True) -> Submission:
    model = validate(spec)
    if enqueue:
        from farm.queue import check_broker

        check_broker()
    if spec.search is not None:
        from farm.search.driver import submit_search

        return submit_search(spec, model, host=host, enqueue=enqueue)
    with session_scope() as session:
        classes = resolve_device_classes(spec.devices, session, host=host)
        plans, skipped = _compatible(expand(spec, model, classes))
        if not plans:
            raise SpecError("the sweep has no runnable job: " + "; ".join(skipped))
        check_plans(plans, model)  # before the first blob or row is written
        if spec.data:
            check_data(model, read_data(spec.data), [plan.shapes for plan in plans])
            plans = _with_data(plans, open_store().put_file(spec.data))
        model_row = _upsert_model(session, model)
        sweep = Sweep(id=new_id(), name=spec.name, model_id=model_row.id, spec=spec.to_json())
        session.add(sweep)
        counts, not_reused = Counter(), Counter()
        environments = ClassEnvironments(session)
        for seq, plan in enumerate(plans):
            job, why = _new_job(session, sweep.id, seq, plan, force, environments)
            counts[job.status] += 1
            if why:
                not_reused[why] += 1
            session.add(job)
        sweep_id = sweep.id
    queued = enqueue_pending(sweep_id) if enqueue else 0
    return Submission(sweep_id, len(plans), counts["done"], queued, counts["unsupported"], skipped,
                      dict(not_reused))


def _new_job(session, sweep_id: str, seq: int, plan: JobPlan, force: bool,
             environments: "ClassEnvironments") -> tuple[Job, str | None]:
    """The job row for a plan, reusing an identical finished result made in
    the environment the class's devices run now; also why one was not reused."""
    job = Job(id=new_id(), sweep_id=sweep_id, seq=seq, key=plan.key, backend=plan.backend,
              backend_version=environments.version(plan.device_class, plan.backend), precision=plan.precision,
              batch_size=plan.batch_size, profile=plan.profile_name, workload=plan.workload,
              device_class=plan.device_class, config=plan.config, status="pending", attempts=0)
    support = backend_config(plan.backend).capabilities().supports(plan)
    if not support.ok:
        job.status, job.finished_at, job.error = "unsupported", utcnow(), support.reason
        return job, None
    twins = [] if force else _finished_twins(session, plan.key)
    twin, why = environments.pick(session, twins, plan.device_class, plan.backend)
    if twin is not None:
        job.status, job.result_job_id, job.finished_at = "done", twin.id, utcnow()
        job.artifact_sha256, job.device_id, job.worker = twin.artifact_sha256, twin.device_id, twin.worker
        job.backend_version = twin.backend_version
    return job, why


class ClassEnvironments:
    """The environment each device class runs now, per backend: what the
    class's live devices report (all registered ones when none is live).
    A result is reused only when every one of them reports the
    environment the result was made in (farm.capabilities.environment)."""

    def __init__(self, session):
        cutoff = db_now(session) - timedelta(seconds=stale_s())
        self.devices: dict[str, list[tuple[bool, dict]]] = {}
        for d in session.scalars(select(Device)):
            live = bool(d.worker and d.last_heartbeat and d.last_heartbeat >= cutoff)
            row = {"kind": d.kind, "driver_version": d.driver_version, "versions": d.versions or {}}
            self.devices.setdefault(d.device_class, []).append((live, row))

    def now(self, device_class: str, backend: str) -> list[dict]:
        """Distinct environments of the class's devices that have the backend."""
        caps = backend_config(backend).capabilities()
        rows = [(live, row) for live, row in self.devices.get(device_class, [])
                if backend in (row["versions"].get("backends") or [])]
        if any(live for live, _ in rows):
            rows = [(live, row) for live, row in rows if live]
        envs: list[dict] = []
        for _, row in rows:
            env = caps.environment(row)
            if env not in envs:
                envs.append(env)
        return envs

    def version(self, device_class: str, backend: str) -> str:
        """The backend's version the class reports (before a worker records its own)."""
        found = {row["versions"].get("libraries", {}).get(backend) for _, row in self.devices.get(device_class, [])
                 if backend in (row["versions"].get("backends") or [])} - {None}
        return found.pop() if len(found) == 1 else "unknown"

    def pick(self, session, twins: list[Job], device_class: str, backend: str) -> tuple[Job | None, str | None]:
        if not twins:
            return None, None
        envs = self.now(device_class, backend)
        if not envs:
            return None, f"no device of {device_class} with {backend} has registered its versions"
        if len(envs) > 1:
            return None, (f"the devices of {device_class} run different {backend} environments "
                          f"({'; '.join(describe(e) for e in envs)})")
        for twin in twins:
            if result_environment(session, twin) == envs[0]:
                return twin, None
        made = result_environment(session, twins[0])
        return None, f"{device_class} now runs {describe(envs[0])}; the earlier result was made with {describe(made)}"


def result_environment(session, job: Job) -> dict | None:
    """The environment the worker recorded with a job's newest measurement."""
    env = session.scalar(select(Measurement.environment).where(Measurement.job_id == job.id)
                         .order_by(Measurement.attempt.desc()).limit(1))
    return (env or {}).get("backend_environment")


def enqueue_pending(sweep_id: str | None = None, statuses=("pending",)) -> int:
    """Mark jobs queued (committed first, so a crash never loses one), then
    send their messages. Returns how many were sent."""
    from farm.queue import send_jobs

    with session_scope() as session:
        query = select(Job).where(Job.status.in_(statuses))
        if sweep_id:
            query = query.where(Job.sweep_id == sweep_id)
        jobs = [(j.id, route(j)) for j in session.scalars(query.order_by(Job.seq))]
        if jobs:
            # Guarded: a job cancelled (or claimed) since the SELECT keeps its state.
            marked = set(session.scalars(
                update(Job).where(Job.id.in_([j for j, _ in jobs]), Job.status.in_(statuses))
                .values(status="queued", queued_at=utcnow()).returning(Job.id)))
            jobs = [(job_id, queue) for job_id, queue in jobs if job_id in marked]
    try:
        return send_jobs(jobs)
    except Exception as exc:  # the broker went away after check_broker
        raise UserError(f"jobs were queued but the broker could not take their messages ({exc}); "
                        f"run 'farm sweep resume {sweep_id or 'ID'}' once it is back") from None


def get_sweep(session, sweep_id: str) -> Sweep:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise NotFoundError(f"no sweep with id {sweep_id!r} (see 'farm sweep list')")
    return sweep


def sweep_status(sweep_id: str) -> dict:
    with session_scope() as session:
        sweep = get_sweep(session, sweep_id)
        counts = Counter(job.status for job in sweep.jobs)
        waiting = sorted(_waiting(sweep.jobs, live_queues(session)))
        total = len(sweep.jobs)
        finished = sum(counts[s] for s in FINAL_STATES)
        from farm.search.driver import is_searching

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
                  "created_at": sweep.created_at.isoformat(timespec="seconds")}
    from farm.search.driver import search_summary

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
    return "running" if counts["running"] or finished else "queued"


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
    from farm.search.driver import is_searching

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
    """A sweep's running jobs with the worker running each (oldest first)."""
    with session_scope() as session:
        jobs = session.scalars(select(Job).where(Job.sweep_id == sweep_id, Job.status == "running")
                               .order_by(Job.started_at, Job.seq)).all()
        return [{"job_id": j.id, "backend": j.backend, "precision": j.precision, "batch_size": j.batch_size,
                 "profile": j.profile, "device_class": j.device_class, "worker": j.worker,
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
