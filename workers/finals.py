"""Interleaved finals on one worker: the top candidates of a device class
measured A B C A B C ... with the same warm-up before every window.

Every candidate is loaded once (its stored artifact, verified by hash) and
warmed up; then each round times every candidate in turn for
``duration_ms`` after ``warmup_ms``. Each window is stored as one
``final_rounds`` row with its raw samples and the NVML telemetry (SM clock,
power, temperature, throttle reasons) the backend's timer recorded. All
rounds land in one transaction, guarded by the claim, so a worker that
dies mid-finals leaves nothing half-written; the coordinator re-queues it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import traceback
from dataclasses import replace
from pathlib import Path

from sqlalchemy import update

from farm.config import settings
from farm.db import FinalRound, Finals, Job, Model, session_scope, utcnow
from farm.routing import RUN_FINALS
from farm.spec import MeasureConfig
from farm.store import open_store
from workers import runtime_state
from workers.backends import load_backend
from workers.backends.base import JobContext
from workers.tasks import app

log = logging.getLogger(__name__)


def claim(finals_id: str, worker: str, device_id: int | None) -> int | None:
    with session_scope() as session:
        return session.execute(
            update(Finals).where(Finals.id == finals_id, Finals.status == "queued")
            .values(status="running", attempts=Finals.attempts + 1, worker=worker, device_id=device_id,
                    started_at=utcnow(), error=None)
            .returning(Finals.attempts)).scalar_one_or_none()


def build_tuned(plan: dict, worker: str, device, device_id: int | None) -> dict[str, str]:
    """Build and measure the finals' tuned sibling jobs (farm/tuned.py) on
    this worker, as ordinary jobs (build, accuracy gate, measurement, result
    recorded), before the rounds; returns those that cannot enter the
    rounds, with why."""
    from farm.tuned import TUNED_OF
    from workers.claim import DISPLACED
    from workers.executor import execute

    left_out = {}
    for tuned_id in (plan.get(TUNED_OF) or {}):
        status = execute(tuned_id, worker, device, device_id)
        if status == DISPLACED:
            raise RuntimeError(f"another worker holds this device row; tuned job {tuned_id} not run")
        why = _tuned_outcome(tuned_id)
        if why:
            left_out[tuned_id] = why
    return left_out


def _tuned_outcome(job_id: str, poll_s: float = 2.0) -> str | None:
    """Why the tuned job cannot enter the rounds (None: it can); waits while
    another worker still runs it (a duplicate message reached it first)."""
    import time

    from sqlalchemy import select

    from farm.config import default_timeouts
    from farm.db import Measurement
    from farm.db.models import FINAL_STATES
    from farm.tuned import unusable

    deadline = time.monotonic() + sum(default_timeouts().values())
    while True:
        with session_scope() as session:
            job = session.get(Job, job_id)
            if job is None or job.status in FINAL_STATES or time.monotonic() > deadline:
                measurement = session.scalar(
                    select(Measurement).where(Measurement.job_id == (job.result_job_id or job.id))
                    .order_by(Measurement.attempt.desc()).limit(1)) if job is not None else None
                return unusable(job, measurement)
        time.sleep(poll_s)


def _contexts(session, finals: Finals, device, workdir: Path,
              left_out: dict[str, str] | None = None) -> list[tuple[str, JobContext, dict, Path]]:
    from workers.pipeline import data_file
    from workers.inputs import load_data
    from workers.model_cache import source_model
    from workers.native_source import backend_model_path

    store, cache = open_store(), settings().home / "cache"
    out = []
    for position, job_id in enumerate(j for j in finals.job_ids if j not in (left_out or {})):
        job = session.get(Job, job_id)
        if job is None or job.status != "done" or not job.artifact_sha256:
            raise ValueError(f"job {job_id} has no finished artifact to re-measure")
        if job.device_class != device.device_class:
            raise ValueError(f"job {job_id} is for {job.device_class}, this worker is {device.device_class}")
        config = job.config
        model = session.get(Model, job.sweep.model_id)
        # Prepared once per worker process, from verified cached files (workers/model_cache.py).
        source = source_model(model.sha256, model.artifact_sha256 or model.sha256, store, cache)
        artifact = workdir / f"candidate-{position}.artifact"
        store.get_file(job.artifact_sha256, artifact)
        data = data_file(config.get("data_sha256"), store, cache)
        ctx = JobContext(job_id=job_id, precision=config["precision"], batch_size=config["batch_size"],
                         shapes=config["profile"]["inputs"], model=source.info,
                         model_path=backend_model_path(config["backend"], source, store, cache),
                         measure=MeasureConfig(**config["measure"]), calibration=config["calibration"],
                         device=device, workdir=workdir, store=store, data=load_data(data) if data else None, rows=config.get("rows"))
        out.append((job_id, ctx, config, artifact))
    return out


def window_for(measure: MeasureConfig, plan: dict) -> MeasureConfig:
    """The job's own timing settings (CUDA graph, sync, streams, ...) with the
    finals' warm-up and window length, measured once per round."""
    return replace(measure, warmup_ms=float(plan.get("warmup_ms", 200)), duration_ms=float(plan.get("duration_ms", 500)),
                   iterations=min(measure.iterations, 10), max_remeasure=0, layer_profile=False)


def interleave(runners: list[tuple[str, object, dict, MeasureConfig]], rounds: int) -> list[dict]:
    """A B C A B C ...: one window per candidate per round, same warm-up."""
    windows = []
    for _, runner, feeds, window in runners:  # a first untimed pass: every candidate starts warm
        runner.measure(feeds, window)
    for number in range(rounds):
        for position, (job_id, runner, feeds, window) in enumerate(runners):
            started = utcnow()
            timing = runner.measure(feeds, window)
            windows.append({"round": number, "position": position, "job_id": job_id, "started_at": started,
                            "samples_ms": list(timing.samples_ms), "telemetry": dict(timing.telemetry or {}),
                            "flags": list(timing.flags)})
    return windows


def run(finals_id: str, worker: str, device, device_id: int | None) -> str:
    attempt = claim(finals_id, worker, device_id)
    if attempt is None:
        return "skipped"
    workdir = Path(tempfile.mkdtemp(prefix=f"finals-{finals_id}-"))
    runners = []
    try:
        with session_scope() as session:
            plan = dict(session.get(Finals, finals_id).settings)
        left_out = build_tuned(plan, worker, device, device_id)
        if plan.get("tuned_of"):
            from workers.registry import beat

            beat(device_id, worker, current_job=f"finals:{finals_id}"[:32])  # the tuned jobs' ends cleared it
        with session_scope() as session:
            contexts = _contexts(session, session.get(Finals, finals_id), device, workdir, left_out)
        for job_id, ctx, config, artifact in contexts:
            runner = load_backend(config["backend"], config.get("build")).load(artifact, ctx)
            runners.append((job_id, runner, ctx.measurement_feeds(), window_for(ctx.measure, plan)))
        windows = interleave(runners, int(plan.get("rounds", 4)))
        return _store(finals_id, worker, attempt, windows, left_out)
    except Exception:
        log.exception("finals %s failed", finals_id)
        return _fail(finals_id, worker, attempt, traceback.format_exc(limit=8))
    finally:
        for _, runner, _, _ in runners:
            runner.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _store(finals_id: str, worker: str, attempt: int, windows: list[dict], left_out: dict[str, str]) -> str:
    import numpy as np

    with session_scope() as session:
        for w in windows:
            session.add(FinalRound(finals_id=finals_id, attempt=attempt, round=w["round"], position=w["position"],
                                   job_id=w["job_id"], samples_ms=w["samples_ms"],
                                   p50_ms=float(np.median(w["samples_ms"])) if w["samples_ms"] else None,
                                   telemetry=w["telemetry"], flags=w["flags"], started_at=w["started_at"]))
        done = session.execute(update(Finals).where(Finals.id == finals_id, Finals.status == "running",
                                                    Finals.attempts == attempt, Finals.worker == worker)
                               .values(status="done", finished_at=utcnow(),
                                       result={"tuned_left_out": left_out} if left_out else {}))
        if done.rowcount != 1:
            session.rollback()  # taken over after we were presumed dead
            return "superseded"
    return "done"


def _fail(finals_id: str, worker: str, attempt: int, error: str) -> str:
    from farm.tuned import cancel_unbuilt

    with session_scope() as session:
        failed = session.execute(update(Finals).where(Finals.id == finals_id, Finals.status == "running",
                                                      Finals.attempts == attempt, Finals.worker == worker)
                                 .values(status="failed", error=error, finished_at=utcnow()))
        if failed.rowcount == 1:
            cancel_unbuilt(session, session.get(Finals, finals_id).settings, "its finals failed before building it")
    return "failed"


@app.task(name=RUN_FINALS)
def run_finals(finals_id: str) -> str:
    """Thin task: the worker's own device, the finals' id."""
    from workers.registry import beat

    state = runtime_state.current()
    if not beat(state.device_id, state.worker, current_job=f"finals:{finals_id}"[:32]):
        return "displaced"
    try:
        status = run(finals_id, state.worker, state.device, state.device_id)
    finally:
        beat(state.device_id, state.worker, clear_job=True)
    if status in ("done", "failed"):
        from workers.executor import advance_search

        advance_search(finals_id=finals_id)  # the rounds decide the winners: the search can finish
    return status
