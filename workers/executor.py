"""Run one job: claim it, build, check accuracy, measure, and record the
result in one transaction. Called by the Celery task with a job id; safe to
call twice for the same id (the claim is a guarded status transition).

Two writes per job touch the database: the claim (device busy, job
running, in one commit) and the end (result, job status, device idle, in
one commit); on PostgreSQL each is one statement (workers.job_writes). Both are retried while the database is unreachable
(farm.db.retry), so an outage neither loses a result nor leaves a job
running under a worker that has moved on.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update

from farm.backends import backend_config
from farm.capabilities import BUILD, RUN
from farm.config import default_timeouts, settings
from farm.db import (FINAL_STATES, Artifact, Device, Job, Measurement, Model, Search, Sweep, session_scope,
                     statement_scope, utcnow)
from farm.db.clock import db_now_value
from farm.db.retry import DatabaseUnavailable, is_transient, retrying
from farm.db.upsert import insert_ignoring_duplicates
from farm.errors import BackendUnsupported, UserError
from farm.redact import mask
from farm.spec import MeasureConfig
from farm.stats import median_cv, summarize
from farm.store import open_store
from workers import environment, phases
from workers.backends import load_backend
from workers.backends.base import BuildResult, DeviceContext, JobContext, Runner, TimingResult
from workers.build_phase import give_back, hand_over, prebuilt
from workers.inputs import load_data
from workers.job_writes import claim_on_device, claim_parameters, claim_statement, end_parameters, end_statement, ours
from workers.model_cache import SourceModel, reference_key, reference_outputs, source_model
from workers.verified_files import matches
from workers.watchdog import Watchdog, guard

log = logging.getLogger(__name__)
DISPLACED = "displaced"
# Work directories are removed off the job's path: the next job need not wait for the disk.
_cleanup = ThreadPoolExecutor(max_workers=1, thread_name_prefix="farm-cleanup")
_WATCHDOG_WRITE_S = 20.0  # the watchdog exits 30 s after a timeout, written or not


class ClaimUnreachable(Exception):
    """The job table stayed unreachable before the job was claimed: the
    message goes back to the broker unacknowledged (the task rejects it)."""


class ResultUnreachable(Exception):
    """The job ran but its end could not be written: the job is still
    ``running`` under this worker, which must stop so the reconciler can
    hand the job to another (the task does that)."""


@dataclass
class Claimed:
    attempt: int
    job: Job
    limits: dict[str, float]
    model_sha256: str
    artifact_sha256: str
    searched: bool = False  # the sweep is a search: a job's end may take its next step


def _claim_update(session, job_id: str, worker: str, device_id: int | None, phase: str = RUN) -> int | None:
    statement = claim_statement(job_id, worker, device_id, phase).returning(Job.attempts)
    return session.execute(statement).scalar_one_or_none()


def claim(job_id: str, worker: str, device_id: int | None, phase: str = RUN) -> int | None:
    """Move a waiting job to running for this worker; returns the attempt
    number, or None if another worker has it or it is already finished.

    One guarded UPDATE: of two workers racing for one job (a duplicate
    message), the database lets exactly one match the WHERE clause.
    """
    with session_scope() as session:
        return _claim_update(session, job_id, worker, device_id, phase)


def take(job_id: str, worker: str, device_id: int | None, phase: str = RUN) -> Claimed | str | None:
    """Mark the device busy with the job, claim the job and read what the
    job needs, in one transaction (on PostgreSQL one statement: one round
    trip per job). The device row names the job in the same commit that
    makes the job running, so a reconciler that sees the job running also
    sees who holds it (farm.reconcile). Returns DISPLACED when another
    worker holds our device row, None when the job is not claimable."""
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


def _shutting_down() -> bool:
    """Celery is stopping this worker: a message we could not claim goes
    back to the broker now rather than after the whole retry window."""
    from celery.worker import state

    return bool(state.should_stop or state.should_terminate)


def _clear_device(session, job_id: str, worker: str, device_id: int | None) -> None:
    """The device is idle again (part of the transaction that ends the job)."""
    if device_id is not None:
        session.execute(update(Device).where(Device.id == device_id, Device.worker == worker,
                                             Device.current_job_id == job_id).values(current_job_id=None))


def clear_device(job_id: str, worker: str, device_id: int | None) -> None:
    def transaction():
        with session_scope(pre_ping=False) as session:
            _clear_device(session, job_id, worker, device_id)

    retrying(transaction, f"marking the device idle after job {job_id}")


def _data_file(key: str | None, store, cache: Path) -> Path | None:
    """The user's input samples (spec ``data``), fetched once per worker and
    verified against their store key before each use."""
    if not key:
        return None
    target = cache / "data" / f"{key}.npz"
    if not matches(target, key):
        target.parent.mkdir(parents=True, exist_ok=True)
        store.get_file(key, target)
    return target


def _measure_stably(runner: Runner, feeds, config: MeasureConfig) -> tuple[TimingResult, int]:
    """Measure; if the run was unstable (spread above max_cv, or telemetry
    flags such as throttling or a neighbour process), measure again up to
    ``max_remeasure`` times and keep the steadiest run."""
    best: TimingResult | None = None
    for attempt in range(config.max_remeasure + 1):
        timing = runner.measure(feeds, config)
        spread = median_cv(timing.samples_ms)
        if spread > config.max_cv and "unstable" not in timing.flags:
            timing.flags.append("unstable")
        if best is None or len(timing.flags) < len(best.flags) or (
            len(timing.flags) == len(best.flags) and spread < median_cv(best.samples_ms)
        ):
            best = timing
        if not timing.flags:
            break
    assert best is not None
    return best, attempt


def execute(job_id: str, worker: str, device: DeviceContext, device_id: int | None, phase: str | None = None) -> str:
    """Run the phase the message asks for (farm.routing decided it; a
    message without one runs the job whole); returns its status ('skipped'
    when it was not claimable, DISPLACED when our device row is someone
    else's). On return the device row no longer names the job."""
    phase = phase or RUN
    try:
        claimed = retrying(lambda: take(job_id, worker, device_id, phase), f"claiming job {job_id}",
                           stop=_shutting_down)
    except DatabaseUnavailable as exc:
        raise ClaimUnreachable(str(exc)) from exc
    phases.lap("claim")
    if claimed is None:
        return "skipped"
    if claimed == DISPLACED:
        return DISPLACED
    assert isinstance(claimed, Claimed)
    status = _run_claimed(claimed, worker, device, device_id, phase)
    if claimed.searched and status in FINAL_STATES:
        advance_search(job_id=job_id)
    return status


def advance_search(job_id: str | None = None, finals_id: str | None = None) -> None:
    """The search this job (or finals) belongs to takes its next step
    (farm.search.driver.advance_after). A failure here fails no job: the
    result is stored, and the next completion, ``farm sweep drive`` or
    ``farm sweep resume`` takes the step."""
    from farm.search.driver import advance_after

    try:
        advance_after(job_id=job_id, finals_id=finals_id)
    except Exception:
        log.warning("could not advance the search of %s", job_id or f"finals {finals_id}", exc_info=True)


def _run_claimed(claimed: Claimed, worker: str, device: DeviceContext, device_id: int | None, phase: str) -> str:
    job_id = claimed.job.id
    ends = _Ends(job_id, worker, claimed.attempt, device_id)
    workdir = Path(tempfile.mkdtemp(prefix=f"job-{job_id}-"))
    try:
        return _execute_claimed(claimed, worker, device, workdir, ends, phase)
    except (ResultUnreachable, ClaimUnreachable):
        raise
    except BackendUnsupported as exc:
        return ends.finish("unsupported", str(exc))
    except Exception as exc:
        if is_transient(exc):
            # The database went away mid-job (a cache lookup, say): not the
            # job's fault. Hand it back untouched; the message is redelivered.
            ends.hand_back(f"{type(exc).__name__}")
            raise ClaimUnreachable(f"job {job_id} handed back: the database went away mid-job") from exc
        if isinstance(exc, UserError):
            return ends.finish("failed", str(exc))
        log.exception("job %s failed", job_id)
        return ends.finish("failed", traceback.format_exc(limit=20))
    finally:
        _cleanup.submit(shutil.rmtree, workdir, ignore_errors=True)


def _execute_claimed(claimed: Claimed, worker: str, device: DeviceContext, workdir: Path, ends: "_Ends",
                     phase: str = RUN) -> str:
    job, store = claimed.job, open_store(patient=True)  # an S3 outage mid-job is waited out, not a failed job
    caps = backend_config(job.backend).capabilities()
    support = caps.supports(job, device)
    if not support.ok and not caps.supports(job).ok:
        raise BackendUnsupported(caps.supports(job).reason)
    if not support.ok:  # a device of its class can do it, this one cannot
        status = give_back(job.id, worker, claimed.attempt, support.reason)
        clear_device(job.id, worker, ends.device_id)
        return status
    if phase == BUILD and support.phase == RUN:
        phase = RUN  # already built (a duplicate build message) or this worker is of its class
    # The watchdog ends this process if a phase overruns; it records the
    # failure first, through the same guarded finish as any other end.
    with Watchdog(claimed.limits, lambda reason: ends.finish("failed", reason, window_s=_WATCHDOG_WRITE_S)):
        phases.lap("setup")
        source = source_model(claimed.model_sha256, claimed.artifact_sha256, store, settings().home / "cache")
        config, build_only = job.config, phase == BUILD
        earlier = prebuilt(job.build, store, workdir) if job.build else None
        data = _data_file(config.get("data_sha256"), store, settings().home / "cache")
        ctx = JobContext(
            job_id=job.id, precision=config["precision"], batch_size=config["batch_size"],
            shapes=config["profile"]["inputs"], model_path=source.path, model=source.info,
            measure=MeasureConfig(**config["measure"]), calibration=config["calibration"], device=device,
            workdir=workdir, store=store, data=load_data(data) if data else None,
        )
        phases.lap("model")
        if build_only:
            return _build_and_hand_over(ctx, config, worker, claimed.attempt, store, ends)
        outcome = _run(ctx, config, source, earlier)
        outcome["environment"] = device.environment(config["backend"])
        return ends.record(store, outcome, job)


def _build_and_hand_over(ctx: JobContext, config: dict, worker: str, attempt: int, store, ends: "_Ends") -> str:
    backend = guard(load_backend(config["backend"], config.get("build")))
    built = backend.build(ctx)
    key, extras, rows = _put_outputs(store, ctx.job_id, built, config)

    def transaction():
        with session_scope(pre_ping=False) as session:
            _insert_artifacts(session, rows)

    ends.write(transaction, f"recording the build of job {ctx.job_id}")
    _remember_artifacts(rows)
    environment = ctx.device.environment(config["backend"])
    status = ends.write(lambda: hand_over(ctx.job_id, worker, attempt, built, backend.version(), key, extras,
                                          environment),
                        f"handing job {ctx.job_id} over for measurement")
    clear_device(ctx.job_id, worker, ends.device_id)
    return status


def _run(ctx: JobContext, config: dict, source: SourceModel, earlier: BuildResult | None = None) -> dict:
    backend = guard(load_backend(config["backend"], config.get("build")))  # per-phase time limits
    built: BuildResult = earlier or backend.build(ctx)
    phases.lap("build")
    outcome = {"built": built, "version": backend.version(), "timing": None, "accuracy": None,
               "unsupported": None, "remeasured": 0}
    feeds = ctx.measurement_feeds()
    phases.lap("feeds")
    before_mb = _device_used_mb(ctx.device)
    try:
        runner = backend.load(built.artifact, ctx)
        phases.lap("load")
    except BackendUnsupported as exc:
        # The build is real and kept; only measurement is impossible here.
        outcome["unsupported"] = mask(str(exc))  # shown in reports: a backend may quote a URL
        return outcome
    try:
        if config["accuracy"].get("enabled", True):
            from farm.accuracy import evaluate, is_reference

            key = reference_key(source, config.get("data_sha256"), ctx.run_shapes)
            reference = reference_outputs(source, key, feeds)
            phases.lap("reference")
            outcome["accuracy"] = evaluate(runner.infer(feeds), reference, ctx.precision, config["accuracy"],
                                           reference_job=is_reference(config))
            phases.lap("accuracy")
        if ctx.measure.streams > 1 and not runner.multi_stream:
            outcome["unsupported"] = (f"measure.streams is {ctx.measure.streams}, but the {config['backend']} runner "
                                      "measures one stream only (multi-stream: tensorrt, tensorrt-rtx, torch)")
            return outcome
        outcome["timing"], outcome["remeasured"] = _measure_stably(runner, feeds, ctx.measure)
        _set_memory(outcome["timing"], before_mb)
        phases.lap("measure")
        if ctx.measure.layer_profile:
            outcome["layer_profile"] = _layer_profile(runner, feeds, ctx)
    finally:
        runner.close()
    return outcome


def _layer_profile(runner: Runner, feeds, ctx: JobContext) -> Path | None:
    """The per-layer table of a profiling run after the timed one, as a JSON file (None: no profiler)."""
    import json

    table = runner.profile_layers(feeds, ctx.measure)
    if table is None:
        return None
    path = ctx.workdir / "layer-profile.json"
    path.write_text(json.dumps(table, indent=1, default=str))
    return path


def _profile_summary(path: Path | None, key: str | None) -> dict:
    """The top rows of the layer profile, kept with the measurement so reports need no store access."""
    if path is None:
        return {}
    import json

    table = json.loads(path.read_text())
    top = [{k: row.get(k) for k in ("name", "type", "precision", "tactic", "median_ms", "share")}
           for row in table["layers"][:15]]
    return {"layer_profile": {"artifact_sha256": key, "source": table["source"], "iterations": table["iterations"],
                              "total_median_ms": table["total_median_ms"], "rows": len(table["layers"]), "top": top}}


class _Ends:
    """The ways a claimed job ends. Each is one transaction guarded by this
    worker and attempt (a worker presumed dead cannot overwrite its
    successor) that also marks the device idle, retried while the database
    is down (farm.db.retry); if it never comes back, ResultUnreachable."""

    def __init__(self, job_id: str, worker: str, attempt: int, device_id: int | None):
        self.job_id, self.worker, self.attempt, self.device_id = job_id, worker, attempt, device_id

    def _ours(self):
        return ours(self.job_id, self.attempt, self.worker)

    def write(self, transaction, what: str, window_s: float | None = None):
        try:
            return retrying(transaction, what, window_s)
        except DatabaseUnavailable as exc:
            raise ResultUnreachable(str(exc)) from exc

    def finish(self, status: str, error: str | None, window_s: float | None = None) -> str:
        def transaction():
            with session_scope(pre_ping=False) as session:
                session.execute(update(Job).where(*self._ours()).values(
                    status=status, error=mask(error) if error else error, finished_at=utcnow()))  # shown in reports
                _clear_device(session, self.job_id, self.worker, self.device_id)

        self.write(transaction, f"recording job {self.job_id} as {status}", window_s)
        return status

    def hand_back(self, why: str) -> None:
        """Back to queued without counting the attempt (the farm failed, not the job)."""
        def transaction():
            with session_scope(pre_ping=False) as session:
                session.execute(update(Job).where(*self._ours()).values(
                    status="queued", worker=None, attempts=Job.attempts - 1, queued_at=utcnow(),
                    error=f"attempt {self.attempt} handed back: {why}"))
                _clear_device(session, self.job_id, self.worker, self.device_id)

        self.write(transaction, f"handing job {self.job_id} back")

    def record(self, store, outcome: dict, job: Job) -> str:
        built: BuildResult = outcome["built"]
        timing: TimingResult | None = outcome["timing"]
        status = "unsupported" if outcome["unsupported"] else "done"

        def transaction() -> str:
            measurement = _measurement(job, self.attempt, self.device_id, built, timing, outcome, key, extras)
            end = {"status": status, "artifact_sha256": key, "error": outcome["unsupported"],
                   "finished_at": finished_at, "backend_version": outcome["version"]}
            with statement_scope() as session:
                if session.get_bind().dialect.name == "postgresql":
                    landed = self._end_in_one_statement(session, end, measurement, rows)
                else:
                    landed = self._end_and_idle(session, update(Job).where(*self._ours()).values(**end)) == 1
                    if landed:
                        _insert_artifacts(session, rows)
                        session.add(measurement)
                    else:
                        session.rollback()
                return status if landed else self._landed_before(session) or "superseded"

        key, extras, rows = _put_outputs(store, self.job_id, built, job.config)
        if outcome.get("layer_profile"):
            extras["layer-profile"] = _put_file(store, outcome["layer_profile"], "layer-profile", "application/json",
                                                {"job_id": self.job_id}, rows)
        finished_at = utcnow()
        phases.lap("store")
        final = self.write(transaction, f"recording the result of job {self.job_id}")
        if final == status:
            _remember_artifacts(rows)
        if final == "superseded":
            # Another worker took the job over (we were presumed dead): our
            # result must not land twice.
            clear_device(self.job_id, self.worker, self.device_id)
        phases.lap("record")
        return final

    def _end_and_idle(self, session, ended) -> int:
        """Apply the guarded job UPDATE ``ended`` and, when it matched, mark
        the device idle (SQLite). Returns how many job rows matched."""
        matched = session.execute(ended).rowcount
        if matched == 1:
            _clear_device(session, self.job_id, self.worker, self.device_id)
        return matched

    def _end_in_one_statement(self, session, end: dict, measurement: Measurement, rows: list[dict]) -> bool:
        """PostgreSQL: the end, the measurement, new artifact rows and the
        device marked idle in one statement (workers.job_writes)."""
        new_rows = [row for row in rows if row["sha256"] not in _recorded_artifacts]
        job = {"p_job": self.job_id, "p_attempt": self.attempt, "p_worker": self.worker, "p_device": self.device_id,
               "p_status": end["status"], "p_key": end["artifact_sha256"], "p_error": end["error"],
               "p_finished": end["finished_at"], "p_version": end["backend_version"]}
        statement = end_statement(self.device_id is not None, len(new_rows))
        # Core, not the ORM: the statement loads no objects.
        return session.connection().execute(statement, end_parameters(job, measurement, new_rows)).scalar_one() == 1

    def _landed_before(self, session) -> str | None:
        """Our own earlier attempt at this write committed (the connection
        broke before the commit was acknowledged)."""
        row = session.execute(select(Job.status).where(Job.id == self.job_id, Job.attempts == self.attempt,
                                                       Job.worker == self.worker)).scalar_one_or_none()
        return row if row in FINAL_STATES else None


def _device_used_mb(device: DeviceContext) -> float | None:
    if device.kind != "gpu":
        return None
    from workers.timing.cuda_runtime import device_used_mb

    return device_used_mb(device.index or 0)


def _set_memory(timing: TimingResult, before_mb: float | None) -> None:
    """memory_mb, one meaning for every backend: the device memory the
    loaded model holds at the job's shapes (weights, activations, I/O
    buffers, workspace), i.e. used device memory after the warm-up less
    before the load, less the harness's own buffers. Not measured on CPUs."""
    used = timing.settings.get("device_used_mb")
    if before_mb is None or used is None:
        timing.memory_mb = None
        return
    timing.memory_mb = max(used - before_mb - timing.settings.get("harness_device_mb", 0.0), 0.0)
    timing.settings["memory_before_load_mb"] = before_mb


def _finish(job_id: str, worker: str, attempt: int, status: str, error: str | None) -> str:
    """End a claimed job (guarded by worker and attempt) outside a job run."""
    return _Ends(job_id, worker, attempt, None).finish(status, error)


def _put_outputs(store, job_id: str, built: BuildResult, config: dict) -> tuple[str, dict, list[dict]]:
    """Store the engine and its extra artifacts; returns their keys and the
    artifact rows to insert with the result."""
    meta = {"job_id": job_id, "backend": config["backend"], "precision": config["precision"],
            "device_class": config["device_class"], **built.info}
    files = [("engine", built.artifact, built.media_type, meta)] + [
        (kind, path, "application/json" if path.suffix == ".json" else "application/octet-stream",
         {"job_id": job_id}) for kind, path in built.extra_artifacts.items()]
    keys: dict[str, str] = {}
    rows: list[dict] = []
    for kind, path, media_type, info in files:
        keys[kind] = _put_file(store, path, kind, media_type, info, rows)
    key = keys.pop("engine")
    keys.update(built.info.get("extra_artifacts") or {})  # a build recorded by another worker
    return key, keys, rows


def _put_file(store, path: Path, kind: str, media_type: str, meta: dict, rows: list[dict]) -> str:
    """Put ``path`` in the store; its artifact row joins ``rows``."""
    key = store.put_file(path)
    rows.append({"sha256": key, "size_bytes": path.stat().st_size, "kind": kind, "media_type": media_type,
                 "meta": meta})
    return key


_recorded_artifacts: set[str] = set()  # rows this process has seen committed


def _insert_artifacts(session, rows: list[dict]) -> None:
    # Identical bytes from two workers at once (e.g. the same optimised
    # model for two batch sizes): the first row wins, the other is a no-op.
    # A row this process committed before is not sent again.
    for row in rows:
        if row["sha256"] not in _recorded_artifacts:
            session.execute(insert_ignoring_duplicates(session, Artifact, row, "sha256"))


def _remember_artifacts(rows: list[dict]) -> None:
    _recorded_artifacts.update(row["sha256"] for row in rows)


def _flags(built: BuildResult, timing: TimingResult | None) -> list[str]:
    """Timing flags, then every fallback the build recorded (build_info
    ``fallbacks``: flag -> what was done instead), once each."""
    flags = list(timing.flags) if timing else []
    return flags + [f for f in (built.info.get("fallbacks") or {}) if f not in flags]


def _measurement(job: Job, attempt: int, device_id, built: BuildResult, timing: TimingResult | None,
                 outcome: dict, key: str, extras: dict) -> Measurement:
    stats = summarize(timing.samples_ms, job.batch_size) if timing else {}
    if timing and timing.throughput is not None:
        stats["throughput"] = timing.throughput  # several streams at once: aggregate, not batch / latency
    e2e = summarize(timing.e2e_samples_ms, job.batch_size) if timing and timing.e2e_samples_ms else {}
    accuracy = outcome["accuracy"] or {}
    return Measurement(
        job_id=job.id, attempt=attempt, device_id=device_id, measured=timing is not None,
        unsupported_reason=outcome["unsupported"],
        samples_ms=list(timing.samples_ms) if timing else [],
        count=stats.get("count"), mean_ms=stats.get("mean_ms"), p50_ms=stats.get("p50_ms"),
        p90_ms=stats.get("p90_ms"), p95_ms=stats.get("p95_ms"), p99_ms=stats.get("p99_ms"),
        stdev_ms=stats.get("stdev_ms"), cv=stats.get("cv"), throughput=stats.get("throughput"),
        e2e_p50_ms=e2e.get("p50_ms"), e2e_p99_ms=e2e.get("p99_ms"),
        build_s=built.build_s, artifact_size=built.artifact.stat().st_size,
        memory_mb=timing.memory_mb if timing else None,
        max_abs_error=accuracy.get("max_abs_error"), rel_l2_error=accuracy.get("rel_l2_error"),
        cosine=accuracy.get("cosine"), accuracy_pass=accuracy.get("passed"), accuracy=accuracy,
        accuracy_status=accuracy.get("status", "unchecked"),
        telemetry={**(timing.telemetry if timing else {}), "remeasured": outcome["remeasured"],
                   "timing_settings": timing.settings if timing else {},
                   "e2e_samples_ms": timing.e2e_samples_ms if timing else [],
                   **_profile_summary(outcome.get("layer_profile"), extras.get("layer-profile"))},
        flags=_flags(built, timing),
        environment={**environment.capture(), "backend_environment": outcome.get("environment")},
        build_info={**built.info, "artifact_sha256": key, "extra_artifacts": extras},
    )
