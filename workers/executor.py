"""Run one job: claim it, build, check accuracy, measure, and record the
result in one transaction. Called by the Celery task with a job id; safe to
call twice for the same id (the claim is a guarded status transition)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import traceback
from pathlib import Path

from sqlalchemy import update

from farm.config import default_timeouts, settings
from farm.db import Artifact, Job, Measurement, Model, session_scope, utcnow
from farm.errors import BackendUnsupported, UserError
from farm.model_info import read_model
from farm.redact import mask
from farm.spec import MeasureConfig
from farm.stats import median_cv, summarize
from farm.store import open_store
from workers import environment
from workers.backends import load_backend
from workers.backends.base import BuildResult, DeviceContext, JobContext, Runner, TimingResult
from workers.build_phase import hand_over, is_build_only, prebuilt
from workers.inputs import load_data
from workers.onnx_quirks import normalized_model
from workers.watchdog import Watchdog, guard

log = logging.getLogger(__name__)
CLAIMABLE = ("pending", "queued")


def claim(job_id: str, worker: str, device_id: int | None) -> int | None:
    """Move a queued job to running for this worker; returns the attempt
    number, or None if another worker has it or it is already finished.

    One guarded UPDATE: of two workers racing for one job (a duplicate
    message), the database lets exactly one match the WHERE clause.
    """
    with session_scope() as session:
        attempt = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.in_(CLAIMABLE))
            .values(status="running", attempts=Job.attempts + 1, worker=worker, device_id=device_id,
                    started_at=utcnow(), error=None)
            .returning(Job.attempts)
        ).scalar_one_or_none()
        return attempt


def _model_file(session, job: Job, store, cache: Path) -> Path:
    model = session.get(Model, job.sweep.model_id)
    target = cache / "models" / f"{model.sha256}.onnx"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        store.get_file(model.artifact_sha256, target)
    return normalized_model(target)


def _data_file(key: str | None, store, cache: Path) -> Path | None:
    """The user's input samples (spec ``data``), fetched once per worker."""
    if not key:
        return None
    target = cache / "data" / f"{key}.npz"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        store.get_file(key, target)
    return target


def _register_artifact(session, store, path: Path, kind: str, media_type: str, meta: dict) -> str:
    key = store.put_file(path)
    if session.get(Artifact, key) is None:
        # Identical bytes from two workers at once (e.g. the same optimised
        # model for two batch sizes): the first row wins, the other is a no-op.
        row = {"sha256": key, "size_bytes": path.stat().st_size, "kind": kind, "media_type": media_type,
               "meta": meta}
        session.execute(_insert_ignoring_duplicates(session, row))
    return key


def _insert_ignoring_duplicates(session, row: dict):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(Artifact).values(**row).on_conflict_do_nothing(index_elements=["sha256"])


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


def _reference_outputs(model_path: Path, feeds) -> dict:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def _limits(job: Job) -> dict[str, float]:
    return {**default_timeouts(), **((job.sweep.spec or {}).get("timeouts") or {})}


def execute(job_id: str, worker: str, device: DeviceContext, device_id: int | None) -> str:
    """Run the job end to end; returns its final status (or 'skipped')."""
    attempt = claim(job_id, worker, device_id)
    if attempt is None:
        return "skipped"
    store = open_store(patient=True)  # an S3 outage mid-job is waited out, not a failed job
    cache = settings().home / "cache"
    workdir = Path(tempfile.mkdtemp(prefix=f"job-{job_id}-"))
    try:
        with session_scope() as session:
            job = session.get(Job, job_id)
            limits = _limits(job)
        # The watchdog ends this process if a phase overruns; it records the
        # failure first, through the same guarded finish as any other end.
        with Watchdog(limits, lambda reason: _finish(job_id, worker, attempt, "failed", reason)):
            with session_scope() as session:
                job = session.get(Job, job_id)
                model_path = _model_file(session, job, store, cache)
                config, build_only = job.config, is_build_only(job, device)
                earlier = prebuilt(job.build, store, workdir) if job.build else None
            data = _data_file(config.get("data_sha256"), store, cache)
            ctx = JobContext(
                job_id=job_id, precision=config["precision"], batch_size=config["batch_size"],
                shapes=config["profile"]["inputs"], model_path=model_path, model=read_model(model_path),
                measure=MeasureConfig(**config["measure"]), calibration=config["calibration"], device=device,
                workdir=workdir, store=store, data=load_data(data) if data else None,
            )
            if build_only:
                return _build_and_hand_over(ctx, config, worker, attempt, store)
            outcome = _run(ctx, config, earlier)
            return _record(job_id, worker, attempt, device_id, store, outcome)
    except BackendUnsupported as exc:
        return _finish(job_id, worker, attempt, "unsupported", str(exc))
    except UserError as exc:
        return _finish(job_id, worker, attempt, "failed", str(exc))
    except Exception:
        log.exception("job %s failed", job_id)
        return _finish(job_id, worker, attempt, "failed", traceback.format_exc(limit=20))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _build_and_hand_over(ctx: JobContext, config: dict, worker: str, attempt: int, store) -> str:
    backend = guard(load_backend(config["backend"], config.get("build")))
    built = backend.build(ctx)
    with session_scope() as session:
        key, extras = _register_outputs(session, store, ctx.job_id, built, config)
    return hand_over(ctx.job_id, worker, attempt, built, backend.version(), key, extras)


def _run(ctx: JobContext, config: dict, earlier: BuildResult | None = None) -> dict:
    backend = guard(load_backend(config["backend"], config.get("build")))  # per-phase time limits
    built: BuildResult = earlier or backend.build(ctx)
    outcome = {"built": built, "version": backend.version(), "timing": None, "accuracy": None,
               "unsupported": None, "remeasured": 0}
    feeds = ctx.measurement_feeds()
    try:
        runner = backend.load(built.artifact, ctx)
    except BackendUnsupported as exc:
        # The build is real and kept; only measurement is impossible here.
        outcome["unsupported"] = str(exc)
        return outcome
    try:
        if config["accuracy"].get("enabled", True):
            from farm.accuracy import evaluate

            reference = _reference_outputs(ctx.model_path, feeds)
            outcome["accuracy"] = evaluate(runner.infer(feeds), reference, ctx.precision, config["accuracy"])
        if ctx.measure.streams > 1 and not runner.multi_stream:
            outcome["unsupported"] = (f"measure.streams is {ctx.measure.streams}, but the {config['backend']} runner "
                                      "measures one stream only (multi-stream: tensorrt, tensorrt-rtx, torch)")
            return outcome
        outcome["timing"], outcome["remeasured"] = _measure_stably(runner, feeds, ctx.measure)
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


def _finish(job_id: str, worker: str, attempt: int, status: str, error: str | None) -> str:
    with session_scope() as session:
        session.execute(
            update(Job).where(Job.id == job_id, Job.status == "running", Job.attempts == attempt,
                              Job.worker == worker)
            .values(status=status, error=mask(error) if error else error, finished_at=utcnow())  # shown in reports
        )
    return status


def _record(job_id: str, worker: str, attempt: int, device_id, store, outcome: dict) -> str:
    built: BuildResult = outcome["built"]
    timing: TimingResult | None = outcome["timing"]
    status = "unsupported" if outcome["unsupported"] else "done"
    with session_scope() as session:
        job = session.get(Job, job_id)
        key, extras = _register_outputs(session, store, job_id, built, job.config)
        if outcome.get("layer_profile"):
            extras["layer-profile"] = _register_artifact(session, store, outcome["layer_profile"], "layer-profile",
                                                         "application/json", {"job_id": job_id})
        session.add(_measurement(job, attempt, device_id, built, timing, outcome, key, extras))
        result = session.execute(
            update(Job).where(Job.id == job_id, Job.status == "running", Job.attempts == attempt,
                              Job.worker == worker)
            .values(status=status, artifact_sha256=key, error=outcome["unsupported"], finished_at=utcnow(),
                    backend_version=outcome["version"])
        )
        if result.rowcount != 1:
            # Another worker took the job over (we were presumed dead): our
            # result must not land twice.
            session.rollback()
            return "superseded"
    return status


def _register_outputs(session, store, job_id: str, built: BuildResult, config: dict) -> tuple[str, dict]:
    """Store the engine and its extra artifacts; returns their keys."""
    meta = {"job_id": job_id, "backend": config["backend"], "precision": config["precision"],
            "device_class": config["device_class"], **built.info}
    key = _register_artifact(session, store, built.artifact, "engine", built.media_type, meta)
    extras = {kind: _register_artifact(session, store, path, kind,
                                       "application/json" if path.suffix == ".json" else "application/octet-stream",
                                       {"job_id": job_id})
              for kind, path in built.extra_artifacts.items()}
    extras.update(built.info.get("extra_artifacts") or {})  # a build recorded by another worker
    return key, extras


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
        telemetry={**(timing.telemetry if timing else {}), "remeasured": outcome["remeasured"],
                   "timing_settings": timing.settings if timing else {},
                   "e2e_samples_ms": timing.e2e_samples_ms if timing else [],
                   **_profile_summary(outcome.get("layer_profile"), extras.get("layer-profile"))},
        flags=list(timing.flags) if timing else [],
        environment=environment.capture(),
        build_info={**built.info, "artifact_sha256": key, "extra_artifacts": extras},
    )
