"""The one sweep planner: what every submission decides before its first
row, for ``farm sweep submit`` / ``farm run`` and a search alike.

``plan_sweep`` resolves the device classes, expands the spec (a search:
once per knob variant of ``search.axes``, with its screening measurement),
drops (backend, device kind) pairs the backend cannot measure on (listed as
``skipped``), checks every limit (FARM_MAX_JOBS, FARM_MAX_INPUT_MB, the
batch column: farm/limits.py) and the data file, and uploads the data.
``create_sweep`` writes the model row and the sweep row; ``new_job`` the job
row of one plan (reusing an identical finished result where the class's
devices run the environment it was made in); ``enqueue_pending`` sends what
is pending.

Layers: farm/service.py and farm/search/* import this module; it imports
neither of them.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from farm.backends import backend_config
from farm.capabilities import describe
from farm.config import stale_s
from farm.db import Device, Job, Measurement, Model, Sweep, session_scope, utcnow
from farm.db.clock import db_now
from farm.devices import resolve_device_classes
from farm.errors import NotFoundError, SpecError, UserError
from farm.expand import JobPlan, expand
from farm.input_data import check_data, data_config, read_data
from farm.limits import check_plans
from farm.model_info import ModelInfo
from farm.routing import route
from farm.spec import SweepSpec
from farm.store import open_store


@dataclass
class Submission:
    sweep_id: str
    jobs: int
    reused: int
    queued: int
    unsupported: int
    skipped: list[str] = field(default_factory=list)
    not_reused: dict[str, int] = field(default_factory=dict)  # why an earlier identical result was not reused -> jobs
    conversion: dict | None = None  # a model converted to ONNX at submit (farm/sources.py): how, and its parity
    notes: list[str] = field(default_factory=list)  # said once on stderr (farm.accuracy_spec.synthetic_note)


@dataclass
class SweepPlan:
    classes: list[str]
    variants: list[tuple[dict, list[JobPlan]]]  # (search knob values, plans); one ({}, plans) without search
    skipped: list[str]  # "(backend) on (class) (why)" pairs left out
    data_sha256: str | None = None

    @property
    def plans(self) -> list[JobPlan]:
        """Every distinct plan (a knob of another backend repeats a plan)."""
        out, seen = [], set()
        for _, plans in self.variants:
            for plan in plans:
                if plan.key not in seen:
                    seen.add(plan.key)
                    out.append(plan)
        return out


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def plan_sweep(spec: SweepSpec, model: ModelInfo, session, host: str | None = None) -> SweepPlan:
    """Everything a submission decides before writing: nothing is written
    (but the data blob, content-addressed) unless every check passed."""
    classes = resolve_device_classes(spec.devices, session, host=host)
    variants, skipped = _variants(spec, model, classes)
    planned = SweepPlan(classes, variants, skipped)
    plans = planned.plans
    if not plans:
        raise SpecError("the sweep has no runnable job: " + "; ".join(skipped))
    check_plans(plans, model)  # a search may build its whole space: its limits are the whole space's
    if spec.data:
        headers = read_data(spec.data)
        check_data(model, headers, [plan.shapes for plan in plans])
        planned.data_sha256 = open_store().put_file(spec.data)
        extra = data_config(headers, planned.data_sha256, spec.precisions, spec.calibration, spec.accuracy.samples)
        planned.variants = [(knobs, with_data(plans, extra)) for knobs, plans in variants]
    return planned


def _variants(spec: SweepSpec, model: ModelInfo, classes: list[str]):
    if spec.search is None:
        plans, skipped = compatible(expand(spec, model, classes))
        return [({}, plans)], skipped
    out, skipped = [], set()
    for knobs, variant in spec_variants(spec, spec.search.axes):
        for name in variant.backends:
            backend_config(name).from_dict(variant.build.get(name), where=f"search.axes ({name})")
        if spec.search.screen:
            variant = replace(variant, measure=replace(variant.measure, **spec.search.screen))
        plans, why = compatible(expand(variant, model, classes))
        out.append((knobs, plans))
        skipped.update(why)
    return out, sorted(skipped)


def knob_variants(axes: dict[str, tuple], backends: tuple[str, ...]) -> list[dict[str, object]]:
    """Every combination of the knob axes ({'backend.knob': value})."""
    for key in axes:
        backend = key.split(".", 1)[0]
        if backend not in backends:
            raise SpecError(f"spec field 'search.axes.{key}': {backend!r} is not one of the sweep's backends "
                            f"({', '.join(backends)})")
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*(axes[n] for n in names))] or [{}]


def spec_variants(spec, axes: dict[str, tuple]) -> list[tuple[dict, object]]:
    """(knob values, spec with those knobs in its build block) per variant."""
    out = []
    for variant in knob_variants(axes, spec.backends):
        build = {name: dict(knobs) for name, knobs in spec.build.items()}
        for key, value in variant.items():
            backend, knob = key.split(".", 1)
            build.setdefault(backend, {})[knob] = value
        out.append((variant, replace(spec, build=build)))
    return out


def compatible(plans: list[JobPlan]) -> tuple[list[JobPlan], list[str]]:
    """Drop (backend, device class) pairs the backend cannot measure on: a
    device kind it does not run on, a GPU whose compute capability it cannot
    target (the capabilities object decides). What it cannot do on a class
    it runs on (a precision) stays, as ``unsupported`` jobs or pruned
    candidates that say why: ``unsupported``."""
    kept, skipped = [], set()
    for plan in plans:
        caps = backend_config(plan.backend).capabilities()
        if plan.device_class.split(".", 1)[0] not in caps.device_kinds:
            skipped.add(f"{plan.backend} on {plan.device_class} ({plan.backend} runs on {', '.join(caps.device_kinds)})")
        elif why := caps.refuses_class(plan.device_class):  # e.g. a compute capability it cannot target
            skipped.add(f"{plan.backend} on {plan.device_class} ({why})")
        else:
            kept.append(plan)
    return kept, sorted(skipped)


def unsupported(plan) -> str | None:
    """Why the plan's backend cannot do it at all (the capabilities object's answer), or None."""
    support = backend_config(plan.backend).capabilities().supports(plan)
    return None if support.ok else support.reason


def with_data(plans: list[JobPlan], extra: dict) -> list[JobPlan]:
    """The data file (its digest, and the rows calibration and evaluation
    read: farm.input_data.data_config) changes accuracy and timing inputs,
    so it is part of each job's configuration (and key)."""
    return [replace(plan, config={**plan.config, **extra}) for plan in plans]


def get_sweep(session, sweep_id: str) -> Sweep:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise NotFoundError(f"no sweep with id {sweep_id!r} (see 'farm sweep list')")
    return sweep


def create_sweep(session, spec: SweepSpec, model: ModelInfo) -> Sweep:
    """The model row (uploaded, insert-or-get) and a new sweep row, flushed."""
    model_row = upsert_model(session, model)
    sweep = Sweep(id=new_id(), name=spec.name, model_id=model_row.id, spec=spec.to_json())
    session.add(sweep)
    session.flush()
    return sweep


def upsert_model(session, model: ModelInfo) -> Model:
    """Insert-or-get: shells submitting the same new model at once all get
    the one row (farm.db.upsert), none an IntegrityError."""
    from farm.db.upsert import insert_ignoring_duplicates

    from farm.model_bundle import put_model

    store = open_store()
    source = _stored_source(store, model.source)
    row = session.scalar(select(Model).where(Model.sha256 == model.sha256))
    if row is None:
        key = put_model(store, model)  # one file, or graph + external data files + their manifest
        values = {"sha256": model.sha256, "name": source["name"] if source else model.path.name,
                  "path": source["path"] if source else str(model.path),
                  "size_bytes": model.size_bytes, "inputs": [i.to_json() for i in model.inputs],
                  "artifact_sha256": key, "source_sha256": source["sha256"] if source else None, "source": source}
        session.execute(insert_ignoring_duplicates(session, Model, values, "sha256"))
        row = session.scalar(select(Model).where(Model.sha256 == model.sha256))
    else:
        # Verified, not just present: a missing object (a new store) is uploaded again, a corrupt one replaced.
        put_model(store, model)
        if source and row.source and source.get("parity") != row.source.get("parity") \
                and (source.get("parity") or {}).get("inputs") == "data":
            row.source = {**row.source, "parity": source["parity"]}  # checked on the user's data now
    return row


def _stored_source(store, source: dict | None) -> dict | None:
    """A converted model's source goes to the store beside its ONNX (a
    SavedModel directory as its deterministic tar): backends that read the
    format natively (the torch backend and .pt2) fetch it by this key."""
    if source is None:
        return None
    kept = {k: v for k, v in source.items() if k not in ("archive", "ok")}
    return {**kept, "artifact_sha256": store.put_file(Path(source["archive"]))}


def _finished_twins(session, key: str) -> list[Job]:
    return list(session.scalars(
        select(Job).where(Job.key == key, Job.status == "done", Job.result_job_id.is_(None))
        .order_by(Job.finished_at.desc()).limit(20)
    ))


def new_job(session, sweep_id: str, seq: int, plan: JobPlan, force: bool,
            environments: "ClassEnvironments") -> tuple[Job, str | None]:
    """The job row for a plan, reusing an identical finished result made in
    the environment the class's devices run now; also why one was not reused."""
    job = Job(id=new_id(), sweep_id=sweep_id, seq=seq, key=plan.key, backend=plan.backend,
              backend_version=environments.version(plan.device_class, plan.backend), precision=plan.precision,
              batch_size=plan.batch_size, profile=plan.profile_name, workload=plan.workload,
              device_class=plan.device_class, config=plan.config, status="pending", attempts=0)
    reason = unsupported(plan)
    if reason:
        job.status, job.finished_at, job.error = "unsupported", utcnow(), reason
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
