"""The live search: state in the database, one guarded step at a time.

``submit_search`` stores the whole space as ``search_candidates`` rows and
takes the first step. ``advance`` reads the space, the jobs' results and
what is in flight, asks the strategy (farm/search/engine.py) what next,
records pruned configurations with their reasons, creates ordinary jobs for
the proposals (an identical finished job is reused, never rebuilt) and
commits all of that with a compare-and-set on ``searches.step``: two
coordinators advancing one search at once cannot both act, and one killed
mid-step leaves the previous step intact. When every group has stopped,
the finalists go to interleaved finals (farm/search/finals.py); their
rounds decide the winners.
"""

from __future__ import annotations

import time
from dataclasses import replace

from sqlalchemy import func, select, update

from farm.db import FINAL_STATES, Finals, Job, Measurement, Search, SearchCandidate, Sweep, session_scope, utcnow
from farm.errors import NotFoundError
from farm.expand import JobPlan
from farm.planner import (ClassEnvironments, Submission, create_sweep, enqueue_pending, get_sweep, new_job,
                          plan_sweep, unsupported)
from farm.search.config import SearchConfig
from farm.search.engine import plan_step, skipped_reason
from farm.search.observe import Observation, feasible, score
from farm.search.space import Candidate, candidates_from_plans, groups, point_key, workload_key
from farm.search.summary import is_searching, search_summary  # noqa: F401 (callers import them from here)

POLL_S = 0.5
SEED_LIMIT = 2000  # newest earlier jobs of the model read for priors and hints, each step


def submit_search(spec, model, host: str | None = None, enqueue: bool = True, force: bool = False):
    """Store the sweep and its search space; take the first step. The space
    is planned as a sweep is (farm/planner.py: every check and limit of
    submit); a configuration its backend cannot do is pruned with the reason.
    ``force`` is kept in the search's config: every later step, whichever
    coordinator or worker takes it, builds anew too."""
    config = replace(spec.search, force=True) if force else spec.search
    with session_scope() as session:
        planned = plan_sweep(spec, model, session, host=host)
        candidates = candidates_from_plans(planned.variants)
        budget = spec.search.budget_for(len(candidates), len(groups(candidates)))
        sweep = create_sweep(session, spec, model)  # the search row refers to the sweep
        session.add(Search(sweep_id=sweep.id, strategy=config.strategy, config=config.to_json(),
                           state="searching", step=0, space_size=len(candidates), budget=budget, result={}))
        session.flush()
        for c in candidates:
            row = SearchCandidate(sweep_id=sweep.id, idx=c.idx, group_key=c.group, axes=c.axes, plan=c.plan,
                                  state="open")
            reason = unsupported(_job_plan(c.plan))
            if reason:
                row.state, row.decided_at, row.reason = "pruned", utcnow(), reason
            session.add(row)
        sweep_id = sweep.id
    advance(sweep_id, enqueue=enqueue)
    status = search_summary(sweep_id)
    return Submission(sweep_id, len(candidates), status["reused"], status["in_flight"], status["pruned"],
                      planned.skipped)


def _job_plan(plan: dict) -> JobPlan:
    return JobPlan(**{k: plan[k] for k in ("backend", "precision", "batch_size", "profile_name", "shapes",
                                           "device_class", "config")}, workload=plan.get("workload", ""))


def _observation(c: SearchCandidate, job: Job, m: Measurement | None) -> Observation:
    return Observation(
        idx=c.idx, status=job.status, batch_size=job.batch_size, samples_ms=list(m.samples_ms or []) if m else [],
        p50_ms=m.p50_ms if m and m.measured else None, p99_ms=m.p99_ms if m else None,
        throughput=m.throughput if m else None, memory_mb=m.memory_mb if m else None,
        accuracy_pass=m.accuracy_pass if m else None, rel_l2_error=m.rel_l2_error if m else None,
        accuracy_status=m.accuracy_status if m else None, flags=list(m.flags or []) if m else [],
        accuracy_metric=m.accuracy_metric if m else None, rel_l2_limit=((m.accuracy or {}).get("tolerances") or {}).get("max_rel_error") if m else None,
        error=job.error, job_id=job.id, reused=job.result_job_id is not None)


def _latest_measurement(session, job: Job) -> Measurement | None:
    return session.scalar(select(Measurement).where(Measurement.job_id == (job.result_job_id or job.id))
                          .order_by(Measurement.attempt.desc()).limit(1))


def load_state(session, sweep_id: str):
    """(search, candidate rows, Candidate objects, observations, pending, order)."""
    search = session.get(Search, sweep_id)
    if search is None:
        get_sweep(session, sweep_id)  # an unknown id is "no sweep with id", not "has no search"
        raise NotFoundError(f"sweep {sweep_id!r} has no search (it was submitted without 'search:')")
    rows = list(session.scalars(select(SearchCandidate).where(SearchCandidate.sweep_id == sweep_id)
                                .order_by(SearchCandidate.idx)))
    jobs = {j.id: j for j in session.scalars(select(Job).where(Job.sweep_id == sweep_id))}
    candidates = [Candidate(r.idx, r.group_key, dict(r.axes), r.plan) for r in rows]
    observations, pending = {}, set()
    for r in rows:
        job = jobs.get(r.job_id) if r.job_id else None
        if job is None:
            continue
        if job.status in FINAL_STATES:
            observations[r.idx] = _observation(r, job, _latest_measurement(session, job))
        else:
            pending.add(r.idx)
    order = [r.idx for r in sorted((r for r in rows if r.job_id), key=lambda r: (r.step or 0, r.idx))]
    return search, rows, candidates, observations, pending, order


def _job_axes(job: Job, knob_axes: list[str]) -> tuple[str, dict]:
    """(group, axes) of an earlier job, in this search's terms."""
    config = job.config or {}
    profile = config.get("profile") or {}
    group = f"{job.device_class}|{workload_key(profile.get('name', job.profile), profile.get('inputs') or {})}"
    axes = {"backend": job.backend, "precision": job.precision, "batch_size": job.batch_size,
            "streams": int((config.get("measure") or {}).get("streams", 1))}
    for axis in knob_axes:
        backend, knob = axis.split(".", 1)
        if backend == job.backend:
            axes[axis] = (config.get("build") or {}).get(knob)
    return group, axes


def _seeds(session, sweep_id: str, candidates: list[Candidate], config: SearchConfig) -> tuple[dict, dict]:
    """(priors, hints) per group from the same model's finished results on
    the same device classes in earlier sweeps, as (axes, score). Priors,
    bayes's TPE seed: an earlier job of the same group with a twin here
    (backend, precision, batch, streams, knob values), meeting the
    constraints. Hints, the order quick tries things in (bayes walks quick
    first): every such job that passed the accuracy gate, of any workload
    of the model on that device class (latency and memory bounds do not
    carry over to other input shapes)."""
    if config.strategy == "brute":
        return {}, {}
    sweep = session.get(Sweep, sweep_id)
    table = {(c.group, point_key(c.axes)): c for c in candidates}
    knob_axes = sorted({a for c in candidates for a in c.axes if "." in a})
    by_class: dict[str, list[str]] = {}
    for group in groups(candidates):
        by_class.setdefault(group.split("|", 1)[0], []).append(group)
    rule = config.eligibility
    # Hints carry over to other input shapes: only the accuracy side of the rule applies to them.
    accuracy = replace(rule, max_latency_ms=None, min_throughput=None, max_memory_mb=None)
    earlier = list(session.scalars(select(Job).join(Sweep, Job.sweep_id == Sweep.id)
                                   .where(Sweep.model_id == sweep.model_id, Job.sweep_id != sweep_id,
                                          Job.status == "done", Job.device_class.in_(sorted(by_class)))
                                   .order_by(Job.finished_at.desc()).limit(SEED_LIMIT)))
    figures = _latest_figures(session, {job.result_job_id or job.id for job in earlier})
    priors: dict[str, list] = {}
    hints: dict[str, list] = {}
    for job in earlier:
        m = figures.get(job.result_job_id or job.id)
        if m is None or not m.measured:
            continue
        group, axes = _job_axes(job, knob_axes)
        obs = Observation(idx=-1, status="done", batch_size=job.batch_size, p50_ms=m.p50_ms, p99_ms=m.p99_ms,
                          throughput=m.throughput, memory_mb=m.memory_mb, accuracy_pass=m.accuracy_pass,
                          rel_l2_error=m.rel_l2_error, accuracy_status=m.accuracy_status, flags=list(m.flags or []))
        twin = table.get((group, point_key(axes)))
        if twin is not None and config.strategy == "bayes" and feasible(obs, rule):
            priors.setdefault(group, []).append((twin.axes, score(obs, config.objective)))
        if feasible(obs, accuracy):
            for target in by_class[job.device_class]:
                hints.setdefault(target, []).append((axes, score(obs, config.objective)))
    return priors, hints


def _latest_figures(session, job_ids: set[str]) -> dict:
    """job id -> its latest measurement's figures (no samples), in one query."""
    if not job_ids:
        return {}
    columns = (Measurement.job_id, Measurement.attempt, Measurement.measured, Measurement.p50_ms,
               Measurement.p99_ms, Measurement.throughput, Measurement.memory_mb, Measurement.accuracy_pass,
               Measurement.rel_l2_error, Measurement.accuracy_status, Measurement.flags)
    latest: dict = {}
    for row in session.execute(select(*columns).where(Measurement.job_id.in_(sorted(job_ids)))):
        if row.job_id not in latest or row.attempt > latest[row.job_id].attempt:
            latest[row.job_id] = row
    return latest


def _best_so_far(group: str, candidates, observations, config: SearchConfig) -> float | None:
    ids = {c.idx for c in candidates if c.group == group}
    rule = config.eligibility
    ok = [score(o, config.objective) for i, o in observations.items() if i in ids and feasible(o, rule)]
    if not ok:
        return None
    best = max(ok)
    return -best if config.objective == "latency" else best


STEP_TRIES = 5  # a step lost to a concurrent one is taken again on the state that one left


def advance(sweep_id: str, enqueue: bool = True) -> dict:
    """One step of the search; returns its summary. Safe to call from any
    number of coordinators and workers at once and again after a crash: a
    caller whose step lost the compare-and-set to another's takes it again
    on fresh state (that other step may not have seen the result this
    caller is reporting).

    A step that leaves nothing to wait for (its proposals all reused
    finished jobs) is followed by the next one at once: no job would end to
    take it, and the search sat idle until 'farm sweep drive' (issue 24)."""
    seen = None
    for _ in range(MAX_IDLE_STEPS):
        for _ in range(STEP_TRIES):
            if _take_step(sweep_id):
                break
        idle = _idle(sweep_id)
        if idle is None or idle == seen:  # busy, finished, or a step that decided nothing new
            break
        seen = idle
    if enqueue:
        enqueue_pending(sweep_id)
        from farm.search.finals import send_queued

        send_queued(sweep_id)
    return search_summary(sweep_id)


MAX_IDLE_STEPS = 1000  # a bound, not a limit a real search reaches: each step decides at least one candidate


def _idle(sweep_id: str) -> tuple | None:
    """When the search goes on but nothing of it is in flight (no job waits
    or runs, no finals are queued or running): how far it has got (its
    state, candidates decided, finals made); else None."""
    with session_scope() as session:
        search = session.get(Search, sweep_id)
        if search is None or search.state == "finished":
            return None
        busy_job = session.scalar(select(Job.id).where(Job.sweep_id == sweep_id,
                                                       Job.status.not_in(FINAL_STATES)).limit(1))
        busy_finals = session.scalar(select(Finals.id).where(Finals.sweep_id == sweep_id,
                                                             Finals.status.in_(("queued", "running"))).limit(1))
        if busy_job is not None or busy_finals is not None:
            return None
        decided = session.scalar(select(func.count()).select_from(SearchCandidate).where(
            SearchCandidate.sweep_id == sweep_id, SearchCandidate.state != "open"))
        finals = session.scalar(select(func.count()).select_from(Finals).where(Finals.sweep_id == sweep_id))
        return search.state, decided, finals


def _take_step(sweep_id: str) -> bool:
    """Whether this step committed (False: another coordinator took it)."""
    with session_scope() as session:
        search, rows, candidates, observations, pending, order = load_state(session, sweep_id)
        config = SearchConfig.from_json(search.config)
        seen_step = search.step
        if search.state == "finished":
            return True
        if session.get(Sweep, sweep_id).cancelled:
            _cancel(search, rows)
        elif search.state == "searching":
            _search_step(session, search, rows, candidates, observations, pending, order, config)
        elif search.state == "finals":
            from farm.search.finals import settle

            settle(session, search, rows, candidates, observations, config)
        guard = session.execute(update(Search).where(Search.sweep_id == sweep_id, Search.step == seen_step)
                                .values(step=seen_step + 1))
        if guard.rowcount != 1:
            session.rollback()  # another coordinator took this step
            return False
    return True


def _cancel(search: Search, rows) -> None:
    now = utcnow()
    for row in rows:
        if row.state == "open":
            row.state, row.reason, row.step, row.decided_at = "skipped", "not built: the sweep was cancelled", \
                search.step + 1, now
    search.state, search.finished_at = "finished", now


def _search_step(session, search, rows, candidates, observations, pending, order, config) -> None:
    environments = ClassEnvironments(session)
    by_idx = {r.idx: r for r in rows}
    pruned_rows = {r.idx: r.reason for r in rows if r.state == "pruned"}
    priors, hints = _seeds(session, search.sweep_id, candidates, config)
    step = plan_step(candidates, config, search.budget, observations, pending, order, priors,
                     known_pruned=pruned_rows, hints=hints)
    now = utcnow()
    for idx, reason in step.pruned.items():
        row = by_idx[idx]
        if row.state == "open":
            row.state, row.reason, row.step, row.decided_at = "pruned", reason, search.step + 1, now
            row.best_so_far = _best_so_far(row.group_key, candidates, observations, config)
    for idx in step.proposals:
        row = by_idx[idx]
        job, _why = new_job(session, search.sweep_id, idx, _job_plan(row.plan), config.force, environments)
        session.add(job)
        row.state, row.job_id, row.step, row.decided_at = "built", job.id, search.step + 1, now
        row.best_so_far = _best_so_far(row.group_key, candidates, observations, config)
        if job.status == "done":
            row.reason = f"reused the finished identical job {job.result_job_id}"
    if step.proposals or pending or len(step.finished) < len(groups(candidates)):
        return
    for row in rows:
        if row.state == "open":
            row.state, row.step, row.decided_at = "skipped", search.step + 1, now
            row.reason = skipped_reason(config, step.finished, row.group_key)
    from farm.search.finals import start_finals

    start_finals(session, search, rows, candidates, observations, config)


def drive(sweep_id: str, show=None, alive=None, poll_s: float = POLL_S) -> dict:
    """Advance until the search finishes (``farm run``, ``farm sweep drive``)."""
    last = None
    while True:
        summary = advance(sweep_id)
        if show and summary != last:
            show(summary)
            last = summary
        if summary["state"] == "finished":
            return summary
        if alive is not None and not alive():
            from farm.errors import UserError

            raise UserError("the local workers stopped unexpectedly; run 'farm sweep drive "
                            f"{sweep_id}' to carry on once workers are back")
        time.sleep(poll_s)
