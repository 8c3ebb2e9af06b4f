"""Candidates for ``farm best`` over all of a model's results, at scale.

Loading a million rows into Python takes seconds, so the database narrows
them down first, exactly (no heuristics change the answer):

1. probe: the first eligible rows (any order, LIMIT) give per device class
   an achievable objective value U (an upper bound on the leader's latency,
   a lower bound on its throughput);
2. scan: one pass returns the eligible rows within TIE_WINDOW of U; every
   row that can lead or tie is among them, since the leader is at least as
   good as U;
3. stale check: a candidate superseded by a newer finished job with the
   same job key (a forced re-run) is dropped (indexed lookups by key); the
   remaining candidates are deduplicated per configuration as in best.py.
   Known limit: a configuration re-measured under a different key (e.g. a
   new backend version) whose newer result is > (1+w)^2 worse than the
   bound is not seen, so the older result may still be offered;
   a device whose every candidate was stale is re-scanned with a wider
   bound (x4, x64, then none) until a current row achieves it;
4. the candidates' full rows and samples load through rows.py's query.

The scan forces "measurements first" (CROSS JOIN): SQLite's planner
otherwise walks the status or sweep index and probes a table per row,
3-4x slower. The SQL is plain and runs on PostgreSQL too.
"""

from __future__ import annotations


import pandas as pd
from sqlalchemy import bindparam, select, text

from farm.db import Device, Job, Sweep, session_scope
from farm.reports.best import TIE_WINDOW, Constraints
from farm.devices import device_classes_matching
from farm.reports.rows import _rows_query, finish_frame, resolve_model

PROBE_ROWS = 4096
REACH = (1 + TIE_WINDOW) ** 2
_ELIGIBLE = """FROM measurements m CROSS JOIN jobs j
WHERE j.id = m.job_id AND j.sweep_id IN :sweeps AND j.status = 'done' AND m.measured
  AND m.p50_ms IS NOT NULL AND m.accuracy_pass IS NOT FALSE {filters}
  AND NOT EXISTS (SELECT 1 FROM measurements m2 WHERE m2.job_id = m.job_id AND m2.attempt > m.attempt)"""


def _objective_sql(c: Constraints) -> str:
    return "m.p50_ms" if c.objective == "latency" else "m.throughput"


def _filters(c: Constraints) -> tuple[str, dict]:
    parts, params = [], {}
    if c.max_latency_ms is not None:
        parts.append(f"AND m.{c.latency_stat}_ms <= :max_latency")
        params["max_latency"] = c.max_latency_ms
    if c.min_throughput is not None:
        parts.append("AND m.throughput >= :min_throughput")
        params["min_throughput"] = c.min_throughput
    if c.max_memory_mb is not None:
        parts.append("AND m.memory_mb <= :max_memory")
        params["max_memory"] = c.max_memory_mb
    if c.max_rel_error is not None:
        parts.append("AND (m.rel_l2_error IS NULL OR m.rel_l2_error <= :max_rel_error)")
        params["max_rel_error"] = c.max_rel_error
    if c.objective == "throughput":
        parts.append("AND m.throughput IS NOT NULL")
    return " ".join(parts), params


def _execute(session, sql: str, params: dict):
    statement = text(sql).bindparams(bindparam("sweeps", expanding=True))
    if "classes" in params:
        statement = statement.bindparams(bindparam("classes", expanding=True))
    return session.execute(statement, params).all()


def _probe(session, c: Constraints, base: str, params: dict) -> dict[str, float]:
    sql = f"SELECT j.device_class, {_objective_sql(c)} {base} LIMIT {PROBE_ROWS}"
    best: dict[str, float] = {}
    pick = min if c.objective == "latency" else max
    for device_class, value in _execute(session, sql, params):
        best[device_class] = pick(best.get(device_class, value), value)
    return best


def _scan(session, c: Constraints, base: str, params: dict, bounds: dict[str, float]) -> pd.DataFrame:
    """Eligible rows within the window of each class's bound (None: no bound)."""
    # Reach (1+w)^2 past the bound: a leader up to (1+w) worse than the bound
    # (e.g. the probe's best row was stale) still has its whole window fetched.
    op, factor = ("<=", REACH) if c.objective == "latency" else (">=", 1 / REACH)
    terms, params = [], dict(params)
    for i, (device_class, bound) in enumerate(sorted(bounds.items())):
        params[f"dc{i}"] = device_class
        if bound is None:
            terms.append(f"j.device_class = :dc{i}")
        else:
            params[f"b{i}"] = bound * factor
            terms.append(f"(j.device_class = :dc{i} AND {_objective_sql(c)} {op} :b{i})")
    where = f"({' OR '.join(terms)})"
    if None not in bounds.values():
        # A test on m alone: SQLite applies it before the per-row jobs lookup,
        # so most rows never touch the jobs table.
        params["reach"] = (max if c.objective == "latency" else min)(params[f"b{i}"] for i in range(len(bounds)))
        where = f"{_objective_sql(c)} {op} :reach AND {where}"
    columns = "j.id, j.key, j.device_class, " + _objective_sql(c)
    rows = _execute(session, f"SELECT {columns} {base} AND {where}", params)
    return pd.DataFrame(rows, columns=["job_id", "job_key", "device_class", "objective"])


def _drop_stale(session, scan: pd.DataFrame, sweeps: list[str]) -> pd.DataFrame:
    """Keep rows whose configuration's newest finished job is (or reuses)
    them, under that newest job's id."""
    if scan.empty:
        return scan
    # Superseded means a newer finished job with the same job key (a forced
    # re-run of the identical job): an indexed lookup per candidate key.
    keys, scope = sorted(set(scan["job_key"])), set(sweeps)
    newest = {}
    for start in range(0, len(keys), 5000):
        # Only the key is filtered in SQL so the planner walks ix_jobs_key.
        query = (select(Job.key, Job.result_job_id, Job.id, Job.sweep_id, Job.status)
                 .join(Sweep, Job.sweep_id == Sweep.id)
                 .where(Job.key.in_(keys[start:start + 5000])).order_by(Sweep.created_at, Job.seq))
        for key, result_job_id, job_id, sweep_id, status in session.execute(query):  # the last one wins
            if status == "done" and sweep_id in scope:
                newest[key] = (result_job_id or job_id, job_id)
    current = [newest.get(key, (job_id,))[0] == job_id for job_id, key in zip(scan["job_id"], scan["job_key"])]
    scan = scan[current].copy()
    # Report the newest job, as the full-frame path does (it may reuse this one's result).
    scan["job_id"] = [newest.get(key, (None, job_id))[1] for job_id, key in zip(scan["job_id"], scan["job_key"])]
    return scan


def _unbounded_classes(scan: pd.DataFrame, bounds: dict, c: Constraints) -> list[str]:
    """Classes where no current row is within (1+w) of the bound: their
    leader's window may reach past what was fetched."""
    redo = []
    for device_class, bound in bounds.items():
        values = scan.loc[scan["device_class"] == device_class, "objective"]
        if bound is None:
            continue
        if not (values <= bound * (1 + TIE_WINDOW) if c.objective == "latency"
                else values >= bound / (1 + TIE_WINDOW)).any():
            redo.append(device_class)
    return redo


def _classes(session, sweeps: list[str], device: str | None) -> list[str]:
    classes = session.scalars(select(Job.device_class).where(Job.sweep_id.in_(sweeps)).distinct()).all()
    if not device:
        return list(classes)
    names = session.execute(select(Device.device_class, Device.name).where(Device.device_class.in_(classes))).all()
    chosen = device_classes_matching([(d, None) for d in classes] + [tuple(n) for n in names], device)
    return [d for d in classes if d in chosen]


def model_candidates(model: str, c: Constraints) -> pd.DataFrame:
    """Report rows (with intervals) of every configuration that can lead or tie."""
    with session_scope() as session:
        model_id = resolve_model(session, model).id
        sweeps = list(session.scalars(select(Sweep.id).where(Sweep.model_id == model_id)).all())
        classes = _classes(session, sweeps, c.device) if sweeps else []
        if not classes:
            return finish_frame(_empty(session))
        filters, params = _filters(c)
        base = _ELIGIBLE.format(filters=filters + " AND j.device_class IN :classes")
        params.update(sweeps=sweeps, classes=classes)
        probed = _probe(session, c, base, params)
        bounds = {d: probed.get(d) for d in classes}
        scan = _drop_stale(session, _scan(session, c, base, params, bounds), sweeps)
        for widen in (4.0, 64.0, None):
            redo = _unbounded_classes(scan, bounds, c)
            if not redo:
                break
            bounds = {d: _widened(bounds[d], widen, c) for d in redo}
            again = _drop_stale(session, _scan(session, c, base, params, bounds), sweeps)
            scan = pd.concat([scan[~scan["device_class"].isin(redo)], again], ignore_index=True)
        scan = _within_window(scan, c)
        return _full_rows(session, scan["job_id"].tolist())


def _widened(bound: float | None, factor: float | None, c: Constraints) -> float | None:
    """Every candidate near the bound was stale: look further (None: everything)."""
    if bound is None or factor is None:
        return None
    return bound * factor if c.objective == "latency" else bound / factor


def _within_window(scan: pd.DataFrame, c: Constraints) -> pd.DataFrame:
    if scan.empty:
        return scan
    pick = "min" if c.objective == "latency" else "max"
    leader = scan.groupby("device_class")["objective"].transform(pick)
    keep = scan["objective"] <= leader * (1 + TIE_WINDOW) if c.objective == "latency" \
        else scan["objective"] >= leader / (1 + TIE_WINDOW)
    return scan[keep]


def _empty(session) -> pd.DataFrame:
    result = session.execute(_rows_query(with_samples=True).where(Job.id.is_(None)))
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _full_rows(session, job_ids: list[str]) -> pd.DataFrame:
    parts = []
    for start in range(0, len(job_ids), 500):
        result = session.execute(_rows_query(with_samples=True).where(Job.id.in_(job_ids[start:start + 500])))
        parts.append(pd.DataFrame(result.fetchall(), columns=list(result.keys())))
    frame = pd.concat(parts, ignore_index=True) if parts else _empty(session)
    return finish_frame(frame)


