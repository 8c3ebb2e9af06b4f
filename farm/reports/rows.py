from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import func, select

from farm.db import Device, Job, Measurement, Model, Sweep, session_scope
from farm.errors import NotFoundError
from farm.model_info import sha256_file

# Stable, documented field names of one report row (docs/fields.md).
REPORT_FIELDS = (
    "job_id", "sweep_id", "model", "status", "backend", "backend_version", "precision", "batch_size",
    "profile", "device_class", "device", "latency_mean_ms", "latency_p50_ms", "latency_p90_ms",
    "latency_p95_ms", "latency_p99_ms", "latency_stdev_ms", "latency_cv", "samples", "throughput",
    "e2e_latency_p50_ms", "e2e_latency_p99_ms", "build_s", "artifact_sha256", "artifact_size",
    "memory_mb", "max_abs_error", "rel_l2_error", "cosine", "accuracy_pass", "flags", "reused", "error",
)


def _measurement_for(session, job_id: str) -> Measurement | None:
    return session.scalar(select(Measurement).where(Measurement.job_id == job_id)
                          .order_by(Measurement.attempt.desc()).limit(1))


def _row(session, job: Job, model_name: str) -> dict:
    source_id = job.result_job_id or job.id
    m = _measurement_for(session, source_id) if job.status in ("done", "unsupported") else None
    device = session.get(Device, job.device_id) if job.device_id else None
    return {
        "job_id": job.id, "sweep_id": job.sweep_id, "model": model_name, "status": job.status,
        "backend": job.backend, "backend_version": job.backend_version, "precision": job.precision,
        "batch_size": job.batch_size, "profile": job.profile, "device_class": job.device_class,
        "device": device.name if device else None,
        "latency_mean_ms": m and m.mean_ms, "latency_p50_ms": m and m.p50_ms, "latency_p90_ms": m and m.p90_ms,
        "latency_p95_ms": m and m.p95_ms, "latency_p99_ms": m and m.p99_ms,
        "latency_stdev_ms": m and m.stdev_ms, "latency_cv": m and m.cv, "samples": m.count if m else None,
        "throughput": m and m.throughput, "e2e_latency_p50_ms": m and m.e2e_p50_ms,
        "e2e_latency_p99_ms": m and m.e2e_p99_ms, "build_s": m and m.build_s,
        "artifact_sha256": job.artifact_sha256, "artifact_size": m and m.artifact_size,
        "memory_mb": m and m.memory_mb, "max_abs_error": m and m.max_abs_error,
        "rel_l2_error": m and m.rel_l2_error, "cosine": m and m.cosine,
        "accuracy_pass": m.accuracy_pass if m else None, "flags": list(m.flags) if m else [],
        "reused": job.result_job_id is not None, "error": job.error,
    }


def _resolve_model(session, model: str) -> Model:
    path = Path(model)
    if path.is_file():
        row = session.scalar(select(Model).where(Model.sha256 == sha256_file(path)))
    else:
        row = session.scalar(select(Model).where((Model.name == model) | (Model.sha256.startswith(model.lower())))
                             .order_by(Model.created_at.desc()).limit(1))
    if row is None:
        raise NotFoundError(f"no results for model {model!r} (give a model file, its name or sha256)")
    return row


def job_rows(sweep_id: str | None = None, model: str | None = None) -> list[dict]:
    with session_scope() as session:
        query = select(Job, Model.name).join(Sweep, Job.sweep_id == Sweep.id).join(Model, Sweep.model_id == Model.id)
        if sweep_id:
            if session.get(Sweep, sweep_id) is None:
                raise NotFoundError(f"no sweep with id {sweep_id!r} (see 'farm sweep list')")
            query = query.where(Job.sweep_id == sweep_id)
        if model:
            query = query.where(Sweep.model_id == _resolve_model(session, model).id)
        rows = session.execute(query.order_by(Sweep.created_at, Job.seq)).all()
        return [_row(session, job, name) for job, name in rows]


def jobs_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(REPORT_FIELDS))


def measurement_count() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count(Measurement.id))) or 0
