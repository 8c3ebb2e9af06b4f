"""Builds done on one worker and measured on another.

A device-independent build (TensorRT-RTX) for a GPU device class may run on
any worker with the backend (see farm/routing.py). That worker stores the
engine, records the build on the job (``jobs.build``) and hands the job to
the target class's queue with status ``built``; the measuring worker loads
the stored engine instead of building again.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import update

from farm.db import Job, session_scope, utcnow
from farm.routing import route
from workers.backends.base import BuildResult

log = logging.getLogger(__name__)


def prebuilt(build: dict, store, workdir: Path) -> BuildResult:
    """The build another worker recorded, fetched (hash-verified) from the store."""
    artifact = store.get_file(build["artifact_sha256"], workdir / "prebuilt.engine")
    info = {**build["info"], "built_by": build["worker"]}
    return BuildResult(artifact=artifact, build_s=build["build_s"], info=info, media_type=build["media_type"])


def hand_over(job_id: str, worker: str, attempt: int, built: BuildResult, version: str, key: str,
              extras: dict[str, str], environment: dict | None = None) -> str:
    """Record the build on the job (status ``built``, engine fetchable with
    ``farm fetch --job``) and queue it for measurement (guarded: only while
    this worker still holds this attempt)."""
    from farm.queue import send_jobs

    build = {"artifact_sha256": key, "build_s": built.build_s, "artifact_size": built.artifact.stat().st_size,
             "info": {**built.info, "extra_artifacts": extras},
             "media_type": built.media_type, "worker": worker, "version": version, "environment": environment}
    with session_scope() as session:
        job = session.get(Job, job_id)
        result = session.execute(
            update(Job).where(Job.id == job_id, Job.status == "running", Job.attempts == attempt,
                              Job.worker == worker)
            # The build attempt ended well: give it back, so that only worker
            # deaths count towards quarantine (FARM_MAX_ATTEMPTS) for the measurement.
            .values(status="built", build=build, artifact_sha256=key, queued_at=utcnow(), backend_version=version,
                    attempts=Job.attempts - 1)
        )
        if result.rowcount != 1:
            return "superseded"
        job.build = build
        where = route(job)
    send_jobs([(job_id, where)])
    return "built"


def give_back(job_id: str, worker: str, attempt: int, why: str) -> str:
    """A message this worker cannot serve (misrouted, or a stale phase):
    return the job to waiting and send it where farm.routing says."""
    from farm.queue import send_jobs

    with session_scope() as session:
        job = session.get(Job, job_id)
        status = "built" if job.build else "queued"
        result = session.execute(
            update(Job).where(Job.id == job_id, Job.status == "running", Job.attempts == attempt,
                              Job.worker == worker)
            .values(status=status, queued_at=utcnow(), worker=None, attempts=Job.attempts - 1, error=None))
        if result.rowcount != 1:
            return "superseded"
        where = route(job)
    log.warning("job %s given back (%s); sent to %s", job_id, why, where.queue)
    send_jobs([(job_id, where)])
    return "given back"
