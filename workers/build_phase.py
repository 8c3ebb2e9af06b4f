"""Builds done on one worker and measured on another.

A device-independent build (TensorRT-RTX) for a GPU device class may run on
any worker with the backend (see farm/routing.py). That worker stores the
engine, records the build on the job (``jobs.build``) and hands the job to
the target class's queue; the measuring worker loads the stored engine
instead of building again.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update

from farm.db import Job, session_scope, utcnow
from farm.routing import builds_elsewhere, job_queue
from workers.backends.base import BuildResult, DeviceContext


def is_build_only(job: Job, device: DeviceContext) -> bool:
    """Build here and measure elsewhere: the build may run anywhere, has not
    run yet, and this worker is not of the job's device class."""
    return (job.build is None and device.device_class != job.device_class
            and builds_elsewhere(job.backend, job.device_class))


def prebuilt(build: dict, store, workdir: Path) -> BuildResult:
    """The build another worker recorded, fetched (hash-verified) from the store."""
    artifact = store.get_file(build["artifact_sha256"], workdir / "prebuilt.engine")
    info = {**build["info"], "built_by": build["worker"]}
    return BuildResult(artifact=artifact, build_s=build["build_s"], info=info, media_type=build["media_type"])


def hand_over(job_id: str, worker: str, attempt: int, built: BuildResult, version: str, key: str,
              extras: dict[str, str]) -> str:
    """Record the build on the job and queue it for measurement (guarded:
    only while this worker still holds this attempt)."""
    from farm.queue import send_jobs

    build = {"artifact_sha256": key, "build_s": built.build_s, "info": {**built.info, "extra_artifacts": extras},
             "media_type": built.media_type, "worker": worker, "version": version}
    with session_scope() as session:
        job = session.get(Job, job_id)
        queue = job_queue(job.device_class, job.backend, built=True)
        result = session.execute(
            update(Job).where(Job.id == job_id, Job.status == "running", Job.attempts == attempt,
                              Job.worker == worker)
            # The build attempt ended well: give it back, so that only worker
            # deaths count towards quarantine (FARM_MAX_ATTEMPTS) for the measurement.
            .values(status="queued", build=build, queued_at=utcnow(), backend_version=version,
                    attempts=Job.attempts - 1)
        )
        if result.rowcount != 1:
            return "superseded"
    send_jobs([(job_id, queue)])
    return "built"
