"""Builds sized to the decision: fast builds screen, tuned builds only for finalists.

Every configuration of a sweep is built with its backend's fast default
(torch: Inductor ``default``; TensorRT: the default builder optimization
level), which ranks configurations in seconds a job. The expensive build
(``BackendConfig.tuned_build``: Inductor ``max-autotune``, builder
optimization level 5) took 200-350 s a job for a few percent (-7 % kernel
time for YOLOv8n fp16 b8 on an H200): it can change the answer only among
configurations already close to the top. So it is made for the finalists
alone: every finals (a search's, or ``farm best --remeasure``) gets, next
to each finalist, a *tuned sibling* job: the same configuration with the
tuned build knobs, in the finalist's sweep. The siblings are created
``pending`` with no message; the worker that runs the finals builds and
measures them first, as ordinary jobs (accuracy gate included; a result
reused from an identical earlier tuned build needs no build), then times
the fast and tuned builds interleaved in the same rounds. Both stay
recorded as jobs; the finals' result shows each pair's pooled p50 gain and
the extra build time (``tuned`` in the finals' result, docs/fields.md).

Building the siblings while the GPU measures another job would overlap a
CPU-heavy compile (Inductor's autotuning compiles candidate kernels on every
host core) with a measurement whose host share is part of the figure; the
farm does not do that: a worker builds and measures one job at a time.
"""

from __future__ import annotations

from sqlalchemy import func, select, update

from farm.backends import backend_config
from farm.db import Job, Measurement, utcnow

TUNED_OF = "tuned_of"  # finals settings: tuned sibling job id -> its finalist's job id


def tuned_config(job: Job) -> dict | None:
    """The finalist's configuration with its backend's tuned build knobs (None: no tuned build)."""
    knobs = backend_config(job.backend).tuned_build(dict((job.config or {}).get("build") or {}))
    return None if knobs is None else {**job.config, "build": knobs}


def with_tuned(session, job_ids: list[str]) -> tuple[list[str], dict[str, str]]:
    """(finalists followed by their tuned siblings, sibling -> finalist).
    A finalist that is itself a tuned build, or whose sibling is already
    among the finalists, gets none."""
    from farm.expand import JobPlan, job_key
    from farm.planner import ClassEnvironments, new_job

    jobs = [session.get(Job, job_id) for job_id in job_ids]
    keys = {job.key for job in jobs if job is not None}
    environments, tuned_of, out = None, {}, list(job_ids)
    for fast in jobs:
        config = tuned_config(fast) if fast is not None else None
        if config is None or job_key(config) in keys:
            continue
        sibling = _earlier_sibling(session, fast, job_key(config))
        if sibling is None:
            environments = environments or ClassEnvironments(session)
            plan = JobPlan(backend=fast.backend, precision=fast.precision, batch_size=fast.batch_size,
                           profile_name=fast.profile, shapes=config["profile"]["inputs"],
                           device_class=fast.device_class, config=config, workload=fast.workload or "")
            seq = (session.scalar(select(func.max(Job.seq)).where(Job.sweep_id == fast.sweep_id)) or 0) + 1
            sibling, _why = new_job(session, fast.sweep_id, seq, plan, False, environments)
            session.add(sibling)
            session.flush()
        keys.add(sibling.key)
        tuned_of[sibling.id] = fast.id
        out.append(sibling.id)
    return out, tuned_of


def _earlier_sibling(session, fast: Job, key: str) -> Job | None:
    """A tuned sibling an earlier finals made in the same sweep (kept unless it was cancelled)."""
    return session.scalar(select(Job).where(Job.sweep_id == fast.sweep_id, Job.key == key,
                                            Job.status != "cancelled").order_by(Job.seq.desc()).limit(1))


def cancel_unbuilt(session, settings: dict, why: str) -> None:
    """Tuned siblings still waiting when their finals ended without building
    them: cancelled, so nothing is left pending (a later finals makes new ones)."""
    ids = list((settings or {}).get(TUNED_OF) or {})
    if ids:
        session.execute(update(Job).where(Job.id.in_(ids), Job.status == "pending")
                        .values(status="cancelled", error=why, finished_at=utcnow()))


def unusable(job: Job | None, measurement: Measurement | None) -> str | None:
    """Why a tuned sibling cannot enter the rounds (None: it can)."""
    if job is None:
        return "its job row is gone"
    if job.status != "done" or not job.artifact_sha256:
        return f"its build ended {job.status}" + (f": {job.error.strip().splitlines()[-1]}" if job.error else "")
    if measurement is None or measurement.p50_ms is None:
        return "it was built but not measured"
    if measurement.accuracy_status == "fail":
        return "it failed the accuracy gate"
    if "host_bound" in (measurement.flags or []):
        return "its figure is host_bound"
    return None


def gains(session, settings: dict, pooled_p50: dict[str, float | None], left_out: dict[str, str]) -> list[dict]:
    """Per finalist with a tuned sibling: both pooled p50s of the same
    interleaved rounds, the gain, and both build times."""
    rows = []
    for tuned_id, fast_id in ((settings or {}).get(TUNED_OF) or {}).items():
        fast_p50, tuned_p50 = pooled_p50.get(fast_id), pooled_p50.get(tuned_id)
        fast_build, tuned_build = _build_s(session, fast_id), _build_s(session, tuned_id)
        tuned_job = session.get(Job, tuned_id)
        rows.append({
            "fast_job_id": fast_id, "tuned_job_id": tuned_id,
            "tuned_build": ((tuned_job.config or {}).get("build") if tuned_job else None),
            "fast_p50_ms": fast_p50, "tuned_p50_ms": tuned_p50,
            "p50_gain_pct": (100.0 * (fast_p50 - tuned_p50) / fast_p50) if fast_p50 and tuned_p50 else None,
            "fast_build_s": fast_build, "tuned_build_s": tuned_build,
            "extra_build_s": (tuned_build - fast_build) if fast_build is not None and tuned_build is not None
            else None,
            "left_out": left_out.get(tuned_id)})
    return rows


def _build_s(session, job_id: str) -> float | None:
    job = session.get(Job, job_id)
    if job is None:
        return None
    return session.scalar(select(Measurement.build_s).where(Measurement.job_id == (job.result_job_id or job.id))
                          .order_by(Measurement.attempt.desc()).limit(1))


def gain_line(row: dict) -> str:
    """One line per pair for ``farm best --remeasure``."""
    head = f"tuned build {row['tuned_job_id']} ({_knobs(row['tuned_build'])}) of {row['fast_job_id']}"
    if row.get("left_out"):
        return f"{head}: not re-measured: {row['left_out']}"
    build = ""
    if row["fast_build_s"] is not None and row["tuned_build_s"] is not None:
        build = f"; build {row['fast_build_s']:.1f} s -> {row['tuned_build_s']:.1f} s"
    if row["p50_gain_pct"] is None:
        return f"{head}: no pooled p50{build}"
    return (f"{head}: p50 {row['fast_p50_ms']:.4f} -> {row['tuned_p50_ms']:.4f} ms "
            f"({row['p50_gain_pct']:+.1f} % faster){build} (interleaved rounds)")


def _knobs(build: dict | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted((build or {}).items())) or "tuned"
