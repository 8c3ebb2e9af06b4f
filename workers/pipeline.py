"""The job pipeline: what a claimed job does between its claim and its end.

source model (prepared once per worker) -> backend.build (or the build
another worker stored) -> backend.load -> accuracy against the reference
outputs -> measure (re-measured while unstable) -> optional per-layer
profiling run. A build-phase message stops after the build and hands the
job to its device class (workers.build_phase). Every way the job ends goes
through workers.job_end.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from farm.backends import backend_config
from farm.capabilities import BUILD, RUN
from farm.config import settings
from farm.db import session_scope
from farm.db.retry import is_transient
from farm.errors import BackendUnsupported, UserError
from farm.redact import mask
from farm.spec import MeasureConfig
from farm.stats import median_cv
from farm.store import open_store
from workers import phases
from workers.backends import classify_failure, load_backend
from workers.backends.base import BuildResult, DeviceContext, JobContext, Runner, TimingResult
from workers.build_phase import give_back, hand_over, prebuilt
from workers.claim import ClaimUnreachable, Claimed, clear_device
from workers.faults import WorkerBroken, fault_of
from workers.inputs import load_data
from workers.job_end import Ends, ResultUnreachable, insert_artifacts, put_outputs, remember_artifacts
from workers.measurement_row import set_memory
from workers.model_cache import SourceModel, source_model
from workers.native_source import backend_model_path
from workers.refusals import one_line
from workers.verified_files import matches
from workers.watchdog import Watchdog, guard
from workers.serving import energy_of, serve

log = logging.getLogger(__name__)
# Work directories are removed off the job's path: the next job need not wait for the disk.
_cleanup = ThreadPoolExecutor(max_workers=1, thread_name_prefix="farm-cleanup")
_WATCHDOG_WRITE_S = 20.0  # the watchdog exits 30 s after a timeout, written or not


def run_claimed(claimed: Claimed, worker: str, device: DeviceContext, device_id: int | None, phase: str) -> str:
    """Run a claimed job to its end; returns the status it ended with. A
    job's own failure ends it ``failed``/``unsupported``; a database that
    goes away mid-job hands it back untouched (ClaimUnreachable)."""
    job_id = claimed.job.id
    ends = Ends(job_id, worker, claimed.attempt, device_id)
    places = [settings().home / "cache", Path(tempfile.gettempdir())]
    try:
        workdir = Path(tempfile.mkdtemp(prefix=f"job-{job_id}-"))
    except OSError as exc:
        raise _broken(ends, fault_of(exc, places) or f"cannot make a work directory: {exc}") from exc
    try:
        return _run_phase(claimed, worker, device, workdir, ends, phase)
    except (ResultUnreachable, ClaimUnreachable):
        raise
    except BackendUnsupported as exc:
        return ends.finish("unsupported", one_line(str(exc)))
    except Exception as exc:
        if is_transient(exc):
            # The database went away mid-job (a cache lookup, say): not the
            # job's fault. Hand it back untouched; the message is redelivered.
            ends.hand_back(f"{type(exc).__name__}")
            raise ClaimUnreachable(f"job {job_id} handed back: the database went away mid-job") from exc
        fault = fault_of(exc, places)
        if fault:  # this worker's disk or store, not the job: any job would fail here
            raise _broken(ends, fault) from exc
        if isinstance(exc, UserError):
            return ends.finish("failed", str(exc))
        refused = classify_failure(claimed.job.backend, exc, claimed.job.precision)
        if refused:  # the backend says it cannot take this model or configuration: not a bug
            log.info("job %s unsupported: %s", job_id, refused)
            return ends.finish("unsupported", refused)
        log.exception("job %s failed", job_id)
        return ends.finish("failed", traceback.format_exc(limit=20))
    finally:
        _cleanup.submit(shutil.rmtree, workdir, ignore_errors=True)


def _broken(ends: Ends, fault: str) -> WorkerBroken:
    ends.hand_back(f"its worker's environment is broken: {mask(fault)}")
    return WorkerBroken(mask(fault))


def _run_phase(claimed: Claimed, worker: str, device: DeviceContext, workdir: Path, ends: Ends,
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
    # The phase is the message's (farm.routing decided it once): a build
    # message builds and hands over even on a worker of the job's class, and
    # a built job is never claimed for a build (workers.job_writes.CLAIMABLE).
    # The watchdog ends this process if a phase overruns; it records the
    # failure first, through the same guarded finish as any other end.
    with Watchdog(claimed.limits, lambda reason: ends.finish("failed", reason, window_s=_WATCHDOG_WRITE_S)):
        phases.lap("setup")
        source = source_model(claimed.model_sha256, claimed.artifact_sha256, store, settings().home / "cache")
        config, build_only = job.config, phase == BUILD
        earlier = prebuilt(job.build, store, workdir) if job.build else None
        data = data_file(config.get("data_sha256"), store, settings().home / "cache")
        ctx = JobContext(
            job_id=job.id, precision=config["precision"], batch_size=config["batch_size"],
            shapes=config["profile"]["inputs"], model=source.info,
            model_path=backend_model_path(config["backend"], source, store, settings().home / "cache"),
            measure=MeasureConfig(**config["measure"]), calibration=config["calibration"], device=device,
            workdir=workdir, store=store, data=load_data(data) if data else None, rows=config.get("rows"),
        )
        phases.lap("model")
        if build_only:
            return _build_and_hand_over(ctx, config, worker, claimed.attempt, store, ends)
        outcome = _build_check_measure(ctx, config, source, earlier)
        outcome["environment"] = device.environment(config["backend"])
        return ends.record(store, outcome, job)


def _build_and_hand_over(ctx: JobContext, config: dict, worker: str, attempt: int, store, ends: Ends) -> str:
    backend = guard(load_backend(config["backend"], config.get("build")))
    built = backend.build(ctx)
    key, extras, rows = put_outputs(store, ctx.job_id, built, config)

    def transaction():
        with session_scope(pre_ping=False) as session:
            insert_artifacts(session, rows)

    ends.write(transaction, f"recording the build of job {ctx.job_id}")
    remember_artifacts(rows)
    environment = ctx.device.environment(config["backend"])
    status = ends.write(lambda: hand_over(ctx.job_id, worker, attempt, built, backend.version(), key, extras,
                                          environment),
                        f"handing job {ctx.job_id} over for measurement")
    clear_device(ctx.job_id, worker, ends.device_id)
    return status


def _build_check_measure(ctx: JobContext, config: dict, source: SourceModel,
                         earlier: BuildResult | None = None) -> dict:
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
        # Submit refuses this (Capabilities.refuses_streams); a job queued before that check is refused
        # here, before any accuracy check, so an unmeasured row never carries an accuracy figure.
        if ctx.measure.streams > 1 and not runner.multi_stream:
            outcome["unsupported"] = (f"measure.streams is {ctx.measure.streams}, but the {config['backend']} runner "
                                      "measures one stream only")
            return outcome
        if config["accuracy"].get("enabled", True):
            from workers.accuracy_check import check_accuracy

            outcome["accuracy"] = check_accuracy(runner, ctx, config, source)
            phases.lap("accuracy")
        outcome["timing"], outcome["remeasured"] = measure_stably(runner, feeds, ctx.measure)
        set_memory(outcome["timing"], before_mb)
        phases.lap("measure")
        if ctx.measure.layer_profile:
            outcome["layer_profile"] = _layer_profile(runner, feeds, ctx)
        outcome["energy"] = energy_of(ctx, outcome["timing"])
        if config.get("serving"):  # spec scenarios: LoadGen over a batching server of this engine
            outcome["serving"], outcome["loadgen"] = serve(runner, ctx, config["serving"], feeds, outcome["timing"])
            phases.lap("scenarios")
    finally:
        runner.close()
    return outcome


def data_file(key: str | None, store, cache: Path) -> Path | None:
    """The user's input samples (spec ``data``), fetched once per worker and
    verified against their store key before each use."""
    if not key:
        return None
    target = cache / "data" / f"{key}.npz"
    if not matches(target, key):
        target.parent.mkdir(parents=True, exist_ok=True)
        store.get_file(key, target)
    return target


def measure_stably(runner: Runner, feeds, config: MeasureConfig) -> tuple[TimingResult, int]:
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


def _layer_profile(runner: Runner, feeds, ctx: JobContext) -> Path | None:
    """The per-layer table of a profiling run after the timed one, as a JSON file (None: no profiler)."""
    table = runner.profile_layers(feeds, ctx.measure)
    if table is None:
        return None
    path = ctx.workdir / "layer-profile.json"
    path.write_text(json.dumps(table, indent=1, default=str))
    return path


def _device_used_mb(device: DeviceContext) -> float | None:
    if device.kind != "gpu":
        return None
    from workers.timing.cuda_runtime import device_used_mb

    return device_used_mb(device.index or 0)
