"""The stored engine of a job, wherever it was recorded: a measured job's
newest measurement, a reused job's source, or a build waiting for its
device (``jobs.build``, status ``built``) or one that could not be measured
(``unsupported`` with an artifact). Used by ``farm fetch``."""

from __future__ import annotations

from sqlalchemy import select

from farm.db import Job, Measurement, Sweep, session_scope
from farm.errors import NotFoundError, UserError
from farm.reports.rows import resolve_model

FETCHABLE = ("done", "built", "unsupported")


def _describe(session, job: Job) -> dict | None:
    source = session.get(Job, job.result_job_id) if job.result_job_id else job
    measurement = session.scalar(select(Measurement).where(Measurement.job_id == source.id)
                                 .order_by(Measurement.attempt.desc()).limit(1))
    if measurement is not None and (measurement.build_info or {}).get("artifact_sha256"):
        info = measurement.build_info
        artifact = info["artifact_sha256"]
    elif source.build:
        info, artifact = source.build.get("info") or {}, source.build["artifact_sha256"]
    else:
        info, artifact = {}, source.artifact_sha256
    if not artifact:
        return None
    return {"job_id": job.id, "status": job.status, "backend": job.backend, "precision": job.precision,
            "batch_size": job.batch_size, "profile": job.profile, "device_class": job.device_class,
            "artifact_sha256": artifact, "build_info": info or {}}


def engine(job_id: str) -> dict:
    """The artifact of one job, or a one-line error saying why there is none."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise NotFoundError(f"no job with id {job_id!r} (see 'farm report SWEEP_ID')")
        found = _describe(session, job) if job.status in FETCHABLE else None
        if found is None:
            raise UserError(f"job {job_id} has no stored artifact (status {job.status})")
        return found


def newest_engines(model: str | None, sweep_id: str | None, profile: str | None = None, limit: int = 500):
    """Jobs with a stored artifact, newest first (finished or built)."""
    with session_scope() as session:
        query = select(Job).join(Sweep, Job.sweep_id == Sweep.id).where(Job.status.in_(FETCHABLE))
        if sweep_id:
            if session.get(Sweep, sweep_id) is None:
                raise NotFoundError(f"no sweep with id {sweep_id!r} (see 'farm sweep list')")
            query = query.where(Job.sweep_id == sweep_id)
        else:
            query = query.where(Sweep.model_id == resolve_model(session, model).id)
        if profile:
            query = query.where(Job.profile == profile)
        query = query.order_by(Sweep.created_at.desc(), Job.finished_at.desc(), Job.queued_at.desc(),
                               Job.seq.desc()).limit(limit)
        found = [_describe(session, job) for job in session.scalars(query)]
    return [f for f in found if f is not None]
