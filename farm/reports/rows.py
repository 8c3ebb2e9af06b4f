"""Report rows: one joined query into a DataFrame (never per-row ORM loads).

``REPORT_FIELDS`` is the stable, documented row format (docs/fields.md)
behind ``farm report`` and the base of ``farm best``'s output. New fields
are only ever appended.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import aliased

from farm.db import Artifact, Device, Job, Measurement, Model, Sweep, session_scope
from farm.errors import NotFoundError
from farm.model_info import sha256_file
from farm.reports.confidence import add_intervals
from farm.reports.serving import SERVING_FIELDS, add_serving_columns

REPORT_FIELDS = (
    "job_id", "sweep_id", "model", "status", "backend", "backend_version", "precision", "batch_size",
    "profile", "device_class", "device", "latency_mean_ms", "latency_p50_ms", "latency_p90_ms",
    "latency_p95_ms", "latency_p99_ms", "latency_stdev_ms", "latency_cv", "samples", "throughput",
    "e2e_latency_p50_ms", "e2e_latency_p99_ms", "build_s", "artifact_sha256", "artifact_size",
    "memory_mb", "max_abs_error", "rel_l2_error", "cosine", "accuracy_pass", "flags", "reused", "error",
    # appended in issue 6: bootstrap intervals (farm/reports/confidence.py)
    "latency_p50_ci_low_ms", "latency_p50_ci_high_ms", "throughput_ci_low", "throughput_ci_high",
    # appended in issue 10: what is compared with what, and whether accuracy was checked
    "workload", "accuracy_status",
    # appended in issue 26: energy per inference and the LoadGen serving scenarios (farm/reports/serving.py)
    *SERVING_FIELDS,
    # appended in issue 22: what the accuracy figures were computed on ("data rows 24-47 (24)", "synthetic (4)")
    "accuracy_inputs",
    # appended in fix26: measurement streams, and the axes that tell a row apart beyond backend/precision/batch/profile
    "streams", "settings",
    # appended in fix22: the task metric that decided the accuracy verdict ("iou 0.748")
    "accuracy_metric",
)
CI_FIELDS = ("latency_p50_ci_low_ms", "latency_p50_ci_high_ms", "throughput_ci_low", "throughput_ci_high")
# Columns kept internally next to the report fields (ordering, dedupe, ids).
HIDDEN = ("measurement_id", "job_key", "sweep_created_at", "seq", "serving")
# Counts and sizes: integers in every output format, even in a column with
# missing values (pandas holds those as float64).
INTEGER_FIELDS = frozenset({"batch_size", "samples", "artifact_size", "queue_delay_us", "instances", "streams"})


def measurement_columns(m) -> list:
    """Report columns taken from a measurements row (shared with candidates.py)."""
    return [
        m.mean_ms.label("latency_mean_ms"), m.p50_ms.label("latency_p50_ms"), m.p90_ms.label("latency_p90_ms"),
        m.p95_ms.label("latency_p95_ms"), m.p99_ms.label("latency_p99_ms"), m.stdev_ms.label("latency_stdev_ms"),
        m.cv.label("latency_cv"), m.count.label("samples"), m.throughput.label("throughput"),
        m.e2e_p50_ms.label("e2e_latency_p50_ms"), m.e2e_p99_ms.label("e2e_latency_p99_ms"),
        m.build_s.label("build_s"), m.artifact_size.label("artifact_size"), m.memory_mb.label("memory_mb"),
        m.max_abs_error.label("max_abs_error"), m.rel_l2_error.label("rel_l2_error"), m.cosine.label("cosine"),
        m.accuracy_pass.label("accuracy_pass"), m.flags.label("flags"), m.id.label("measurement_id"),
        accuracy_status(m).label("accuracy_status"), m.energy.label("energy"), m.serving.label("serving"),
        m.accuracy_inputs.label("accuracy_inputs"), m.accuracy_metric.label("accuracy_metric"),
    ]


def accuracy_status(m):
    """The recorded status, or for rows written without one (older workers,
    bulk loads) the verdict: pass / fail, or unchecked without one."""
    return func.coalesce(m.accuracy_status, case((m.accuracy_pass.is_(True), "pass"),
                                                 (m.accuracy_pass.is_(False), "fail"), else_="unchecked"))


def job_columns(j) -> list:
    return [
        j.id.label("job_id"), j.sweep_id.label("sweep_id"), j.status.label("status"), j.backend.label("backend"),
        j.backend_version.label("backend_version"), j.precision.label("precision"),
        j.batch_size.label("batch_size"), j.profile.label("profile"), j.device_class.label("device_class"),
        j.artifact_sha256.label("artifact_sha256"), j.error.label("error"), j.key.label("job_key"),
        j.seq.label("seq"), (j.result_job_id.is_not(None)).label("reused"), j.workload.label("workload"),
    ]


def _rows_query(with_samples: bool):
    latest = aliased(Measurement)
    last_attempt = (select(func.max(latest.attempt)).where(latest.job_id == Measurement.job_id)
                    .scalar_subquery())
    # A reused job reports the measurement of the job that holds it.
    measured = and_(Measurement.job_id == func.coalesce(Job.result_job_id, Job.id),
                    Measurement.attempt == last_attempt, Job.status.in_(("done", "unsupported")))
    columns = job_columns(Job) + measurement_columns(Measurement) + [
        Model.name.label("model"), Device.name.label("device"), Sweep.created_at.label("sweep_created_at"),
        Job.build.label("job_build"), Artifact.size_bytes.label("stored_artifact_size"),
        Job.config.label("job_config")]
    if with_samples:
        columns.append(Measurement.samples_ms.label("samples_ms"))
    return (select(*columns).join(Sweep, Job.sweep_id == Sweep.id).join(Model, Sweep.model_id == Model.id)
            .outerjoin(Measurement, measured)
            .outerjoin(Artifact, Artifact.sha256 == Job.artifact_sha256)
            .outerjoin(Device, Device.id == func.coalesce(Job.device_id, Measurement.device_id))
            .order_by(Sweep.created_at, Job.seq))


_HEX_PREFIX = re.compile(r"^[0-9a-fA-F]{4,64}$")


def resolve_model(session, model: str) -> Model:
    from farm.sources import is_saved_model

    path = Path(model)
    if "\x00" in model:
        row = None
    elif path.is_file() or is_saved_model(path):
        row = _model_of_file(session, path)
    else:
        # A name matches exactly; a sha256 prefix only if it is hex (so no
        # LIKE wildcard, '%' or '_', can ever reach the database), escaped anyway.
        match = Model.name == model
        if _HEX_PREFIX.match(model):
            match = match | Model.sha256.startswith(model.lower(), autoescape=True)
        row = session.scalar(select(Model).where(match).order_by(Model.created_at.desc()).limit(1))
    if row is None:
        raise NotFoundError(f"no results for model {model!r} (give a model file, its name or sha256)")
    return row


def _model_of_file(session, path: Path) -> Model | None:
    """The model a file is: an ONNX file by its hash; a converted one
    (torch.export, Keras, TensorFlow: farm/sources.py) by its source's hash,
    the newest conversion of it (a converter upgrade makes a new one)."""
    from farm.sources import source_digest, source_format

    if source_format(path) == "onnx":
        return session.scalar(select(Model).where(Model.sha256 == _onnx_identity(path)))
    digest = source_digest(path)
    return session.scalar(select(Model).where((Model.source_sha256 == digest) | (Model.sha256 == digest))
                          .order_by(Model.created_at.desc(), Model.id.desc()).limit(1))


def _onnx_identity(path: Path) -> str:
    """The sha256 submit gave this ONNX file: its own hash, or for a graph
    with external data files the manifest's hash of graph + data
    (farm/model_bundle.py), as read_model computes it."""
    from farm.errors import ModelError
    from farm.model_info import read_model

    try:
        return read_model(path).sha256
    except ModelError:  # not a model submit would take: no sweep can be of it
        return sha256_file(path)


def check_sweep(session, sweep_id: str) -> None:
    if session.get(Sweep, sweep_id) is None:
        raise NotFoundError(f"no sweep with id {sweep_id!r} (see 'farm sweep list')")


def load_frame(sweep_id: str | None = None, model: str | None = None) -> pd.DataFrame:
    """Every job of a sweep (or of a model's sweeps) with its latest
    measurement and confidence intervals; report fields plus HIDDEN."""
    with session_scope() as session:
        query = _rows_query(with_samples=True)
        if sweep_id:
            check_sweep(session, sweep_id)
            query = query.where(Job.sweep_id == sweep_id)
        if model:
            query = query.where(Sweep.model_id == resolve_model(session, model).id)
        result = session.execute(query)
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    return finish_frame(frame)


def _with_build(frame: pd.DataFrame) -> pd.DataFrame:
    """A job built but not yet measured (status ``built``: a TensorRT-RTX
    engine waiting for its GPU class) has no measurement row: its build time
    and artifact size come from the build recorded on the job, else the
    stored artifact's size."""
    if "job_build" not in frame or "build_s" not in frame:
        return frame
    builds = frame.pop("job_build")
    stored = frame.pop("stored_artifact_size") if "stored_artifact_size" in frame else None
    recorded = [b.get("build_s") if isinstance(b, dict) else None for b in builds]
    sizes = [b.get("artifact_size") if isinstance(b, dict) else None for b in builds]
    frame["build_s"] = frame["build_s"].where(frame["build_s"].notna(), pd.Series(recorded, index=frame.index,
                                                                                  dtype=float))
    size = pd.Series(sizes, index=frame.index, dtype=float)
    if stored is not None:
        size = size.where(size.notna(), pd.to_numeric(stored, errors="coerce"))
    frame["artifact_size"] = frame["artifact_size"].where(frame["artifact_size"].notna(), size)
    return frame


def finish_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Normalise types, add intervals from ``samples_ms`` (then dropped)."""
    frame = _with_build(frame)
    samples = [s or [] for s in frame.pop("samples_ms")] if "samples_ms" in frame else [[]] * len(frame)
    frame["flags"] = [list(f) if isinstance(f, list) else [] for f in frame.get("flags", [])]
    frame["reused"] = frame["reused"].astype(bool)
    # Rows from before workloads were recorded: the profile name within the model.
    frame["workload"] = frame["workload"].where(frame["workload"].notna(), frame["profile"])
    # Rows without a recorded status (older rows, frames built in memory): the verdict, else unchecked.
    verdict = frame["accuracy_pass"].map({True: "pass", False: "fail"}) if "accuracy_pass" in frame else None
    status = frame["accuracy_status"] if "accuracy_status" in frame else pd.Series(None, index=frame.index)
    if verdict is not None:
        status = status.where(status.notna(), verdict)
    frame["accuracy_status"] = status.where(status.notna(), "unchecked").astype(object)
    frame = add_intervals(frame, samples)
    frame = add_serving_columns(frame)
    frame = _with_settings(frame)
    return frame[list(REPORT_FIELDS) + [c for c in HIDDEN if c in frame]]


def _with_settings(frame: pd.DataFrame) -> pd.DataFrame:
    """``streams`` and ``settings`` from each job's config (frames built without
    configs keep what they have, else none)."""
    from farm.reports.plots import job_streams, settings_label, varying_knobs

    if "job_config" not in frame:
        for column in ("streams", "settings"):
            if column not in frame:
                frame[column] = None
        return frame
    configs = list(frame.pop("job_config"))
    knobs = varying_knobs(configs)
    frame["streams"] = pd.Series([job_streams(c) for c in configs], index=frame.index, dtype=object)
    frame["settings"] = pd.Series([settings_label(c, knobs) for c in configs], index=frame.index, dtype=object)
    return frame


def _plain(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if value is pd.NaT or value is pd.NA:
        return None
    return value


def frame_rows(frame: pd.DataFrame, fields=REPORT_FIELDS) -> list[dict]:
    """Plain-Python dicts (NaN -> None) in field order; JSON-safe."""
    records = frame[list(fields)].astype(object).to_dict("records")
    return [{k: _integer(_plain(v)) if k in INTEGER_FIELDS else _plain(v) for k, v in record.items()}
            for record in records]


def _integer(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


def job_rows(sweep_id: str | None = None, model: str | None = None) -> list[dict]:
    return frame_rows(load_frame(sweep_id=sweep_id, model=model))


def jobs_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(REPORT_FIELDS))


def measurement_count() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count(Measurement.id))) or 0
