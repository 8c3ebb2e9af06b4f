"""Read-only views of the farm's database for the fault tests."""

from __future__ import annotations

import re
from collections import Counter

from sqlalchemy import func, select

from farm.config import stale_s
from farm.db import Device, Job, Measurement, session_scope, utcnow


def jobs(sweep_id: str) -> list[Job]:
    with session_scope() as session:
        return list(session.scalars(select(Job).where(Job.sweep_id == sweep_id).order_by(Job.seq)))


def statuses(sweep_id: str) -> Counter:
    return Counter(job.status for job in jobs(sweep_id))


def finished(sweep_id: str) -> bool:
    return all(job.status in ("done", "failed", "unsupported", "cancelled") for job in jobs(sweep_id))


def measurements_per_job(sweep_id: str) -> Counter:
    with session_scope() as session:
        rows = session.execute(select(Measurement.job_id, func.count()).join(Job, Job.id == Measurement.job_id)
                               .where(Job.sweep_id == sweep_id).group_by(Measurement.job_id))
        return Counter({job_id: count for job_id, count in rows})


def live_devices() -> list[Device]:
    with session_scope() as session:
        rows = session.scalars(select(Device).where(Device.worker.is_not(None)))
        return [d for d in rows if d.last_heartbeat and (utcnow() - d.last_heartbeat).total_seconds() < stale_s()]


def device_of(instance: str) -> Device | None:
    with session_scope() as session:
        for device in session.scalars(select(Device)):
            if device.uuid.endswith(f"-{instance}"):
                return device
    return None


def pid_of(worker: str) -> int:
    """Worker names are farm-<tag>[-instance]-<pid>@<host>."""
    return int(re.search(r"-(\d+)@", worker).group(1))


def running_on(instance: str) -> tuple[str, str] | None:
    """(job id, worker) of the job the instance's worker runs now."""
    device = device_of(instance)
    if not device or not device.current_job_id:
        return None
    with session_scope() as session:
        job = session.get(Job, device.current_job_id)
        if job and job.status == "running" and job.worker == device.worker:
            return job.id, job.worker
    return None


def failures(sweep_id: str) -> dict[str, str]:
    return {job.id: job.error for job in jobs(sweep_id) if job.status == "failed"}


def running_under(worker: str) -> list[str]:
    with session_scope() as session:
        return list(session.scalars(select(Job.id).where(Job.status == "running", Job.worker == worker)))
