"""Drift-free finals, coordinator side: who goes in, and what the rounds say.

A GPU's clocks follow its power and thermal state, so two configurations
measured minutes apart carry different histories. The finals re-measure a
device class's top candidates on ONE worker, interleaved: A B C A B C ...,
each window after the same warm-up (workers/finals.py stores every window
with its NVML telemetry). The winner and its ties are decided from the
rounds' pooled samples by the farm's one ranking function
(farm.reports.best.select_best), so drift that hits every candidate alike
cancels out instead of picking the winner.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import numpy as np
import pandas as pd
from sqlalchemy import select, update

from farm.db import Device, FinalRound, Finals, Job, Measurement, Search, session_scope, utcnow
from farm.db.clock import db_now
from farm.errors import NotFoundError, UserError
from farm.reports.best import Constraints, select_best
from farm.reports.rows import REPORT_FIELDS, finish_frame
from farm.routing import RUN_FINALS, queue_for
from farm.tuned import TUNED_OF, tuned_config

FINAL_STATUSES = ("done", "failed")


def create_finals(session, device_class: str, job_ids: list[str], settings: dict, sweep_id: str | None = None) -> str:
    """Queue finals for these finalists. Unless ``settings["tuned"]`` is
    false, each finalist whose backend has a tuned build gets a tuned
    sibling job that the finals' worker builds first and times with them
    (farm/tuned.py)."""
    from farm.tuned import with_tuned

    settings = dict(settings)
    if settings.get("tuned", True):
        job_ids, settings[TUNED_OF] = with_tuned(session, list(job_ids))
    finals = Finals(id=uuid.uuid4().hex[:12], sweep_id=sweep_id, device_class=device_class, job_ids=list(job_ids),
                    settings=settings, status="queued", attempts=0, result={})
    session.add(finals)
    return finals.id


def settings_from(config, objective: str) -> dict:
    f = config.finals
    return {"rounds": f.rounds, "warmup_ms": f.warmup_ms, "duration_ms": f.duration_ms, "objective": objective,
            "constraints": config.eligibility.to_json(), "tuned": f.tuned}


def finals_constraints(settings: dict) -> Constraints:
    """What the finals' winner must meet: the user's constraints, checked on
    the re-measured figures (older finals stored only the objective)."""
    stored = settings.get("constraints")
    if stored is None:
        return Constraints(objective=settings.get("objective", "latency"))
    return Constraints.from_json({**stored, "objective": settings.get("objective", "latency")})


def needs_finals(session, job_ids: list[str], tuned: bool) -> bool:
    """More than one finalist, or one to be timed against its tuned build."""
    return len(job_ids) > 1 or (tuned and any(tuned_config(session.get(Job, j)) for j in job_ids))


def start_finals(session, search: Search, rows, candidates, observations, config) -> None:
    """Pick each group's finalists (screening test); queue finals for
    groups with more than one (or whose one finalist has a tuned build to
    time it against), settle the search when none are needed."""
    from farm.search.engine import finalists
    from farm.search.space import groups

    result = {}
    job_of = {r.idx: r.job_id for r in rows}
    for group, members in groups(candidates).items():
        final, out = finalists(members, observations, config)
        entry = {"finalists": [job_of[f.idx] for f in final],
                 "dropped": {job_of[i]: reason for i, reason in out.items()},
                 "device_class": members[0].plan["device_class"] if members[0].plan else group.split("|")[0]}
        if config.finals.enabled and needs_finals(session, entry["finalists"], config.finals.tuned):
            entry["finals_id"] = create_finals(session, entry["device_class"], entry["finalists"],
                                               settings_from(config, config.objective), search.sweep_id)
        result[group] = entry
    search.result = result
    search.state = "finals"  # settle() finishes at once when no group needs finals
    session.flush()
    settle(session, search, rows, candidates, observations, config)


def settle(session, search: Search, rows, candidates, observations, config) -> None:
    """Once every finals of the search has ended: winners per group."""
    result = dict(search.result or {})
    finals = {f.id: f for f in session.scalars(select(Finals).where(Finals.sweep_id == search.sweep_id))}
    recover_stale(session, list(finals.values()))
    if any(f.status not in FINAL_STATUSES for f in finals.values()):
        return
    for group, entry in result.items():
        entry = dict(entry)
        f = finals.get(entry.get("finals_id"))
        if f is not None and f.status == "done":
            decision = decide(session, f)
            entry.update(winner=decision["winner"], tied=decision["tied"], decided_by="interleaved finals"
                         + ("" if decision["winner"] else ": no finalist met the constraints when re-measured"))
        elif entry["finalists"]:
            frame = job_frame(session, entry["finalists"])
            best = select_best(frame, config.eligibility)
            entry.update(winner=_winner(best), tied=_tied(best),
                         decided_by="screening measurements" + (f" (finals failed: {f.error})" if f else ""))
        else:
            entry.update(winner=None, tied=[], decided_by="no configuration met the constraints")
        result[group] = entry
    search.result, search.state, search.finished_at = result, "finished", utcnow()


def _winner(best: pd.DataFrame) -> str | None:
    rows = best[best["role"] == "winner"]["job_id"].tolist()
    return rows[0] if rows else None


def _tied(best: pd.DataFrame) -> list[str]:
    return best[best["role"] == "tied"]["job_id"].tolist()


def job_frame(session, job_ids: list[str], samples: dict[str, list] | None = None) -> pd.DataFrame:
    """Report rows for these jobs (newest measurement; reused jobs read
    their twin's), optionally with other samples (the finals' pooled ones)."""
    records = []
    for job_id in job_ids:
        job = session.get(Job, job_id)
        m = session.scalar(select(Measurement).where(Measurement.job_id == (job.result_job_id or job.id))
                           .order_by(Measurement.attempt.desc()).limit(1))
        own = list(m.samples_ms or []) if m else []
        data = np.asarray((samples or {}).get(job_id, own), dtype=float)
        records.append({
            "job_id": job.id, "sweep_id": job.sweep_id, "status": job.status, "backend": job.backend,
            "backend_version": job.backend_version, "precision": job.precision, "batch_size": job.batch_size,
            "profile": job.profile, "device_class": job.device_class, "reused": job.result_job_id is not None,
            "latency_p50_ms": float(np.percentile(data, 50)) if data.size else None,
            "latency_p99_ms": float(np.percentile(data, 99)) if data.size else None,
            "latency_mean_ms": float(data.mean()) if data.size else None,
            "throughput": job.batch_size * 1000.0 / float(data.mean()) if data.size else None,
            "memory_mb": m.memory_mb if m else None, "artifact_size": m.artifact_size if m else None,
            "build_s": m.build_s if m else None, "accuracy_pass": m.accuracy_pass if m else None,
            "accuracy_status": m.accuracy_status if m else None, "workload": job.workload,
            "rel_l2_error": m.rel_l2_error if m else None, "flags": list(m.flags or []) if m else [],
            "samples_ms": data.tolist()})
    frame = pd.DataFrame(records)
    for column in REPORT_FIELDS:
        if column not in frame:
            frame[column] = None
    return finish_frame(frame)


def rounds_of(session, finals: Finals) -> list[FinalRound]:
    return list(session.scalars(select(FinalRound).where(FinalRound.finals_id == finals.id,
                                                         FinalRound.attempt == finals.attempts)
                                .order_by(FinalRound.round, FinalRound.position)))


def _clock(telemetry: dict) -> float | None:
    value = (telemetry or {}).get("sm_clock_mhz")
    return value.get("median") if isinstance(value, dict) else value


def decide(session, finals: Finals) -> dict:
    """Winner and ties from the rounds' pooled samples, plus each round's
    p50 relative to the same round's leader (the drift-free comparison)."""
    if finals.result.get("winner"):
        return finals.result
    rounds = rounds_of(session, finals)
    pooled: dict[str, list] = {j: [] for j in finals.job_ids}
    for r in rounds:
        pooled[r.job_id].extend(r.samples_ms or [])
    best = select_best(job_frame(session, finals.job_ids, pooled), finals_constraints(finals.settings))
    winner = _winner(best)
    per_round = {}
    for number in sorted({r.round for r in rounds}):
        these = {r.job_id: r for r in rounds if r.round == number}
        lead = these.get(winner)
        per_round[number] = {j: {"p50_ms": r.p50_ms, "position": r.position, "sm_clock_mhz": _clock(r.telemetry),
                                 "vs_winner": (r.p50_ms / lead.p50_ms) if lead and lead.p50_ms and r.p50_ms else None}
                             for j, r in these.items()}
    pooled_p50 = {j: float(np.median(s)) if s else None for j, s in pooled.items()}
    result = {**(finals.result or {}), "winner": winner, "tied": _tied(best), "rounds": per_round,
              "pooled_p50_ms": pooled_p50}
    if finals.settings.get(TUNED_OF):
        from farm.tuned import gains

        result["tuned"] = gains(session, finals.settings, pooled_p50, result.get("tuned_left_out") or {})
    finals.result = result
    return result


def recover_stale(session, finals: list[Finals]) -> None:
    """A running finals whose worker is gone goes back to queued (re-sent);
    after three worker deaths it fails, and screening decides instead."""
    from farm.config import stale_s

    cutoff = db_now(session) - timedelta(seconds=stale_s())
    for f in finals:
        if f.status != "running":
            continue
        device = session.get(Device, f.device_id) if f.device_id else None
        alive = device and device.worker == f.worker and device.last_heartbeat and device.last_heartbeat >= cutoff
        if alive:
            continue
        values = ({"status": "failed", "error": "its worker died 3 times", "finished_at": utcnow()}
                  if f.attempts >= 3 else {"status": "queued", "sent_at": None})
        if values["status"] == "failed":
            from farm.tuned import cancel_unbuilt

            cancel_unbuilt(session, f.settings, "its finals failed: its worker died 3 times")
        session.execute(update(Finals).where(Finals.id == f.id, Finals.status == "running",
                                             Finals.attempts == f.attempts).values(**values))
        session.refresh(f)


def send_queued(sweep_id: str | None = None, finals_ids: list[str] | None = None) -> int:
    """Send messages for queued finals not sent yet (or sent longer ago than
    FARM_STALE_S: the broker lost it). The claim makes a duplicate harmless."""
    from farm.config import stale_s
    from farm.queue import make_app

    with session_scope() as session:
        query = select(Finals).where(Finals.status == "queued")
        if sweep_id:
            query = query.where(Finals.sweep_id == sweep_id)
        if finals_ids:
            query = query.where(Finals.id.in_(finals_ids))
        now = db_now(session)
        todo = []
        for f in session.scalars(query):
            if f.sent_at is None or f.sent_at < now - timedelta(seconds=stale_s()):
                first = session.get(Job, f.job_ids[0])
                todo.append((f.id, queue_for(f.device_class, first.backend)))
                f.sent_at = now
    if todo:
        app = make_app()
        with app.connection_for_write() as connection:
            for finals_id, queue in todo:
                app.send_task(RUN_FINALS, args=[finals_id], queue=queue, connection=connection)
    return len(todo)


def top_candidates(sweep_id: str | None, model: str | None, constraints: Constraints, top: int) -> dict[str, list]:
    """Per device class, the ``top`` eligible configurations by point estimate."""
    from farm.reports.best import eligible
    from farm.reports.candidates import model_candidates
    from farm.reports.rows import load_frame

    frame = load_frame(sweep_id=sweep_id) if sweep_id else model_candidates(model, constraints)
    frame = eligible(frame, constraints)
    column = "latency_p50_ms" if constraints.objective == "latency" else "throughput"
    out = {}
    for device_class, group in frame.groupby("device_class", sort=True):
        ordered = group.sort_values([column, "job_id"], ascending=[constraints.objective == "latency", True])
        out[device_class] = ordered["job_id"].tolist()[:top]
    return out


REMEASURE_WAIT_S = 1800.0  # how long `farm best --remeasure` waits for its finals to end


def remeasure(sweep_id: str | None, model: str | None, constraints: Constraints, config,
              timeout_s: float | None = None, poll_s: float = 0.5, tuned: bool = True,
              on_queued=None) -> pd.DataFrame:
    """``farm best --remeasure``: each device class's top ``config.top``
    configurations in interleaved finals on one live worker; returns the
    best frame decided by the rounds (a class with one candidate keeps it).
    ``on_queued(queued, timeout_s)``, with (finals id, device class, backend,
    candidates) per finals, is called once they are queued, before the wait."""
    import time

    from farm.queue import check_broker

    timeout_s = REMEASURE_WAIT_S if timeout_s is None else timeout_s
    check_broker()
    ids, single = [], []
    tops = top_candidates(sweep_id, model, constraints, config.top)
    with session_scope() as session:
        for device_class, jobs in tops.items():
            if needs_finals(session, jobs, tuned):
                ids.append(create_finals(session, device_class, jobs,
                                         {"rounds": config.rounds, "warmup_ms": config.warmup_ms,
                                          "duration_ms": config.duration_ms, "objective": constraints.objective,
                                          "constraints": constraints.to_json(),
                                          "tuned": tuned}))
            else:
                single.append(device_class)
        queued = [(f.id, f.device_class, session.get(Job, f.job_ids[0]).backend, len(f.job_ids))
                  for f in (session.get(Finals, i) for i in ids)]
    if queued and on_queued is not None:
        on_queued(queued, timeout_s)
    deadline = time.monotonic() + timeout_s
    while ids:
        send_queued(finals_ids=ids)
        with session_scope() as session:
            finals = [session.get(Finals, i) for i in ids]
            recover_stale(session, finals)
            if all(f.status in FINAL_STATUSES for f in finals):
                failed = [f for f in finals if f.status == "failed"]
                if failed:
                    last = (failed[0].error or "").strip().splitlines()[-1:]
                    raise UserError(f"finals {failed[0].id} on {failed[0].device_class} failed: "
                                    f"{last[0] if last else 'no reason recorded'}")
                decided = finals_frame(session, finals)
                tuned_rows = [row for f in finals for row in (f.result or {}).get("tuned", [])]
                break
        if time.monotonic() > deadline:
            raise UserError(f"finals {', '.join(ids)} did not finish within {timeout_s:g} s; is a worker for "
                            "their device class running ('farm workers')?")
        time.sleep(poll_s)
    else:
        decided, tuned_rows = None, []
    with session_scope() as session:
        parts = [select_best(job_frame(session, tops[cls]), constraints) for cls in single]
    parts = [p for p in parts + [decided] if p is not None and not p.empty]
    best = pd.concat(parts, ignore_index=True).assign(objective=constraints.objective)
    best.attrs["tuned"] = tuned_rows  # each finalist's tuned build against its fast one (farm/tuned.py)
    return best


def finals_frame(session, finals: list[Finals]) -> pd.DataFrame:
    parts = []
    for f in finals:
        rounds = rounds_of(session, f)
        pooled: dict[str, list] = {j: [] for j in f.job_ids}
        for r in rounds:
            pooled[r.job_id].extend(r.samples_ms or [])
        decide(session, f)
        parts.append(select_best(job_frame(session, f.job_ids, pooled),
                                 finals_constraints(f.settings))
                     .assign(finals_id=f.id))
    return pd.concat(parts, ignore_index=True)


def finals_of(finals_id: str) -> dict:
    with session_scope() as session:
        f = session.get(Finals, finals_id)
        if f is None:
            raise NotFoundError(f"no finals with id {finals_id!r}")
        return {"id": f.id, "status": f.status, "result": f.result}
