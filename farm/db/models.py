"""The results database (SQLAlchemy 2). The job table is the source of
truth for the farm; the queue only delivers job ids.

Job statuses: pending -> queued -> running -> done | failed | unsupported,
or cancelled; a job built on one worker for a device class it is not
(TensorRT-RTX for a GPU, built anywhere) is ``built`` while its stored
engine waits for a device of its class to measure it. A job reused from an earlier identical job is ``done`` with
``result_job_id`` pointing at the job that holds the measurement.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, String,
                        Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

JOB_STATES = ("pending", "queued", "running", "built", "done", "failed", "unsupported", "cancelled")
FINAL_STATES = ("done", "failed", "unsupported", "cancelled")


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Model(Base):
    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    inputs: Mapped[list] = mapped_column(JSON)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Converted from another format (farm/sources.py): the source's content hash (what `farm best
    # model.pt2` finds the model by) and the conversion record (format, converter, versions, opset,
    # parity, the source's store key). NULL for a model given as ONNX.
    source_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    source: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Sweep(Base):
    __tablename__ = "sweeps"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    spec: Mapped[dict] = mapped_column(JSON)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    model: Mapped[Model] = relationship()
    jobs: Mapped[list["Job"]] = relationship(back_populates="sweep", order_by="Job.seq")


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sweep_id: Mapped[str] = mapped_column(ForeignKey("sweeps.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(64), index=True)
    backend: Mapped[str] = mapped_column(String(64))
    backend_version: Mapped[str] = mapped_column(String(64))
    precision: Mapped[str] = mapped_column(String(16))
    batch_size: Mapped[int] = mapped_column(Integer)
    profile: Mapped[str] = mapped_column(String(128))
    # model + profile shapes, batch free (farm.expand.workload_key): rankings stay within one
    workload: Mapped[str | None] = mapped_column(String(160), nullable=True, index=True)
    device_class: Mapped[str] = mapped_column(String(128), index=True)
    config: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"), nullable=True)
    result_job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # A build done on another worker (device-independent builds, e.g.
    # TensorRT-RTX), waiting for measurement on the target device class.
    build: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    sweep: Mapped[Sweep] = relationship(back_populates="jobs")
    device: Mapped["Device | None"] = relationship()


class Device(Base):
    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # cpu | gpu
    name: Mapped[str] = mapped_column(String(255))
    device_class: Mapped[str] = mapped_column(String(128), index=True)
    host: Mapped[str] = mapped_column(String(255))
    index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    compute_capability: Mapped[str | None] = mapped_column(String(16), nullable=True)
    cpu_model: Mapped[str | None] = mapped_column(String(255), nullable=True)
    memory_mb: Mapped[int | None] = mapped_column(Integer, nullable=True)
    driver_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    versions: Mapped[dict] = mapped_column(JSON, default=dict)
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)
    current_job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_heartbeat: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Artifact(Base):
    __tablename__ = "artifacts"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))  # engine | onnx | metadata | timing-cache | ...
    media_type: Mapped[str] = mapped_column(String(128), default="application/octet-stream")
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Measurement(Base):
    """One attempt's result. Raw samples are kept next to the statistics."""

    __tablename__ = "measurements"
    __table_args__ = (UniqueConstraint("job_id", "attempt", name="uq_measurement_job_attempt"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"), nullable=True)
    measured: Mapped[bool] = mapped_column(Boolean, default=True)
    unsupported_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    samples_ms: Mapped[list] = mapped_column(JSON, default=list)
    count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    mean_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p50_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p90_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p95_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p99_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    stdev_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    cv: Mapped[float | None] = mapped_column(Float, nullable=True)
    throughput: Mapped[float | None] = mapped_column(Float, nullable=True)  # samples/s
    e2e_p50_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    e2e_p99_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    build_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    artifact_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    memory_mb: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_abs_error: Mapped[float | None] = mapped_column(Float, nullable=True)
    rel_l2_error: Mapped[float | None] = mapped_column(Float, nullable=True)
    cosine: Mapped[float | None] = mapped_column(Float, nullable=True)
    accuracy_pass: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # pass | fail | unchecked (no accuracy figures) | reference (the job *is* the fp32 reference)
    accuracy_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    accuracy: Mapped[dict] = mapped_column(JSON, default=dict)  # per output + tolerances
    # Energy of the fixed-batch measured window (workers/energy.py): source, joules per inference, or why not.
    energy: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    inferences_per_joule: Mapped[float | None] = mapped_column(Float, nullable=True)
    serving: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # LoadGen scenarios (farm/scenarios.py)
    # What the figures were computed on: "data rows 24-47 (24)", "synthetic (4)" (accuracy["inputs"] in full)
    accuracy_inputs: Mapped[str | None] = mapped_column(String(96), nullable=True)
    # The task metric that decided the verdict: "iou 0.748" (accuracy["metric_summary"]; fix22)
    accuracy_metric: Mapped[str | None] = mapped_column(String(64), nullable=True)
    telemetry: Mapped[dict] = mapped_column(JSON, default=dict)
    flags: Mapped[list] = mapped_column(JSON, default=list)
    environment: Mapped[dict] = mapped_column(JSON, default=dict)
    build_info: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Search(Base):
    """A sweep driven by a search strategy (farm/search). Its whole state is
    here and in ``search_candidates``: any coordinator can pick it up."""

    __tablename__ = "searches"
    sweep_id: Mapped[str] = mapped_column(ForeignKey("sweeps.id"), primary_key=True)
    strategy: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="searching")  # searching | finals | finished
    step: Mapped[int] = mapped_column(Integer, default=0)  # compare-and-set guard of each advance
    space_size: Mapped[int] = mapped_column(Integer)
    budget: Mapped[int] = mapped_column(Integer)
    result: Mapped[dict] = mapped_column(JSON, default=dict)  # winners per group, once finished
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class SearchCandidate(Base):
    """One configuration of a search's space and what the search did with it."""

    __tablename__ = "search_candidates"
    __table_args__ = (UniqueConstraint("sweep_id", "idx", name="uq_search_candidate"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sweep_id: Mapped[str] = mapped_column(ForeignKey("searches.sweep_id"), index=True)
    idx: Mapped[int] = mapped_column(Integer)
    group_key: Mapped[str] = mapped_column(String(255))  # device class | workload
    axes: Mapped[dict] = mapped_column(JSON)
    plan: Mapped[dict] = mapped_column(JSON)  # the JobPlan the job is made from
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | built | pruned | skipped
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    best_so_far: Mapped[float | None] = mapped_column(Float, nullable=True)  # group's objective when decided
    decided_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Finals(Base):
    """Interleaved re-measurement of a device class's top candidates on one
    worker (A B C A B C ... rounds, same warm-up)."""

    __tablename__ = "finals"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sweep_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    device_class: Mapped[str] = mapped_column(String(128))
    job_ids: Mapped[list] = mapped_column(JSON)
    settings: Mapped[dict] = mapped_column(JSON)  # rounds, warmup_ms, duration_ms, objective
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | running | done | failed
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class FinalRound(Base):
    """One candidate's window in one round of a finals, with its clocks."""

    __tablename__ = "final_rounds"
    __table_args__ = (UniqueConstraint("finals_id", "attempt", "round", "position", name="uq_final_round"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    finals_id: Mapped[str] = mapped_column(ForeignKey("finals.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    round: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)  # order inside the round (0 = first)
    job_id: Mapped[str] = mapped_column(String(32))
    samples_ms: Mapped[list] = mapped_column(JSON, default=list)
    p50_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    telemetry: Mapped[dict] = mapped_column(JSON, default=dict)  # NVML clocks/power/temperature of the window
    flags: Mapped[list] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
