"""``find_best`` and its candidates over all of a model's results, at scale.

Loading a million rows into Python takes seconds, so the database narrows
them down first, exactly (no heuristics change the answer):

Filters are farm/reports/eligibility.py's rule rendered as SQL (``sql_conditions``), and every group below is one
(device class, workload), as ranking is.

1. probe: one grouped pass gives per group the best eligible objective
   value U (an upper bound on the leader's latency,
   a lower bound on its throughput);
2. scan: one pass returns the eligible rows within TIE_WINDOW of U; every
   row that can lead or tie is among them, since the leader is at least as
   good as U;
3. stale check: a candidate superseded by a newer finished job with the
   same job key (a forced re-run) is dropped (indexed lookups by key); the
   remaining candidates are deduplicated per configuration as in best.py.
   Known limit: a configuration re-measured under a different key (other
   build settings that resolve to the same engine) whose newer result is > (1+w)^2 worse than the
   bound is not seen, so the older result may still be offered;
   a device whose every candidate was stale is re-scanned with a wider
   bound (x4, x64, then none) until a current row achieves it;
4. the candidates' full rows and samples load through rows.py's query.

The scan of a model holding most of the database forces "measurements
first" (CROSS JOIN): SQLite's planner otherwise walks the status or sweep
index and probes a table per row, 3-4x slower. A model with few jobs among
many (one model's 100 workloads in a million-row database) goes the other
way, jobs first through the sweep index (JOBS_FIRST_BELOW), so its answer
does not cost a scan of every measurement. The SQL is plain and runs on
PostgreSQL too.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
from sqlalchemy import bindparam, select, text

from farm.db import Device, Job, Sweep, session_scope
from farm.devices import device_classes_matching
from farm.reports.eligibility import HOST_FLAGS, Constraints
from farm.reports.best import TIE_WINDOW, excluded, kept_out, rank
from farm.reports.rows import _rows_query, finish_frame, load_frame, resolve_model
from farm.reports.serving import SERVING_OBJECTIVES

# The flags inside measurements.flags (a JSON list; its text on SQLite and PostgreSQL alike).
HOST_BOUND_SQL = "(" + " OR ".join(f"COALESCE(CAST(m.flags AS TEXT), '') LIKE '%\"{flag}\"%'"
                                   for flag in HOST_FLAGS) + ")"
# As rows.accuracy_status: the recorded status, else the verdict.
ACCURACY_STATUS_SQL = ("COALESCE(m.accuracy_status, CASE WHEN m.accuracy_pass THEN 'pass' "
                       "WHEN NOT m.accuracy_pass THEN 'fail' ELSE 'unchecked' END)")
# Report column -> SQL expression over candidates.py's measurements m / jobs j.
SQL_COLUMNS = {"latency_p50_ms": "m.p50_ms", "latency_p99_ms": "m.p99_ms", "throughput": "m.throughput",
               "memory_mb": "m.memory_mb", "rel_l2_error": "m.rel_l2_error"}
REACH = (1 + TIE_WINDOW) ** 2
MEASUREMENTS_FIRST = "FROM measurements m CROSS JOIN jobs j"
JOBS_FIRST = "FROM jobs j CROSS JOIN measurements m"
JOBS_FIRST_BELOW = 100_000  # a model with fewer jobs reads them through the sweep index, not every measurement
_ELIGIBLE = """{source}
WHERE j.id = m.job_id AND j.sweep_id IN :sweeps AND {status} = 'done' AND m.measured
  AND m.p50_ms IS NOT NULL {filters}
  AND NOT EXISTS (SELECT 1 FROM measurements m2 WHERE m2.job_id = m.job_id AND m2.attempt > m.attempt)"""
WORKLOAD = "COALESCE(j.workload, j.profile)"  # rows from before workloads: the profile name


def sql_conditions(c: Constraints) -> tuple[str, dict]:
    """The eligibility of rule 3 as SQL over measurements m / jobs j (NULLs
    fail every comparison, as NaN does in ``eligible``)."""
    parts = [f"AND {ACCURACY_STATUS_SQL} IN :accuracy", f"AND {objective_sql(c)} IS NOT NULL"]
    params: dict = {"accuracy": list(c.accuracy_allowed)}
    for i, (column, op, value) in enumerate(c.bounds()):
        parts.append(f"AND {SQL_COLUMNS[column]} {op} :bound{i}")
        params[f"bound{i}"] = value
    if not c.allow_host_bound:
        parts.append(f"AND NOT {HOST_BOUND_SQL}")
    if c.profile:
        parts.append("AND j.profile = :profile")
        params["profile"] = c.profile
    return " ".join(parts), params


def objective_sql(c: Constraints) -> str:
    if c.objective == "throughput":
        return "m.throughput"
    return "(m.p50_ms / j.batch_size)" if c.latency_per == "sample" else "m.p50_ms"


def _execute(session, sql: str, params: dict):
    statement = text(sql)
    for name in ("sweeps", "classes", "accuracy"):
        if name in params:
            statement = statement.bindparams(bindparam(name, expanding=True))
    return session.execute(statement, params).all()


def _probe(session, c: Constraints, base: str, params: dict) -> dict[tuple[str, str], float]:
    """Per (device class, workload) the best eligible objective value (stale
    rows included: the widening below copes with a bound only a stale row met)."""
    pick = "MIN" if c.objective == "latency" else "MAX"
    sql = f"SELECT j.device_class, {WORKLOAD}, {pick}({objective_sql(c)}) {base} GROUP BY j.device_class, {WORKLOAD}"
    return {(device_class, workload): value for device_class, workload, value in _execute(session, sql, params)}


def _scan(session, c: Constraints, base: str, params: dict, bounds: dict) -> pd.DataFrame:
    """Eligible rows within the window of each group's bound (None: no bound;
    a device class alone stands for all its workloads)."""
    # Reach (1+w)^2 past the bound: a leader up to (1+w) worse than the bound
    # (e.g. the probe's best row was stale) still has its whole window fetched.
    op, factor = ("<=", REACH) if c.objective == "latency" else (">=", 1 / REACH)
    if not bounds:  # the probe saw no eligible row (e.g. every one flagged): nothing to scan
        return pd.DataFrame([], columns=["job_id", "job_key", "device_class", "workload", "objective"])
    if len(bounds) > MAX_OR_GROUPS:
        return _scan_joined(session, c, base, params, bounds, op, factor)
    terms, params, objective = [], dict(params), objective_sql(c)
    for i, (group, bound) in enumerate(sorted(bounds.items(), key=lambda kv: str(kv[0]))):
        device_class, workload = group if isinstance(group, tuple) else (group, None)
        params[f"dc{i}"] = device_class
        term = f"{_unindexed('j.device_class', JOBS_FIRST if JOBS_FIRST in base else '')} = :dc{i}"
        if workload is not None:
            params[f"wl{i}"] = workload
            term += f" AND {WORKLOAD} = :wl{i}"
        if bound is not None:
            params[f"b{i}"] = bound * factor
            term += f" AND {objective} {op} :b{i}"
        terms.append(f"({term})")
    where = f"({' OR '.join(terms)})"
    if bounds and None not in bounds.values():
        # A test on m alone: SQLite applies it before the per-row jobs lookup,
        # so most rows never touch the jobs table.
        reach = (max if c.objective == "latency" else min)(params[f"b{i}"] for i in range(len(bounds)))
        if c.objective == "throughput" or c.latency_per == "request":
            params["reach"] = reach
            where = f"{objective} {op} :reach AND {where}"
    columns = f"j.id, j.key, j.device_class, {WORKLOAD}, {objective}"
    rows = _execute(session, f"SELECT {columns} {base} AND {where}", params)
    return pd.DataFrame(rows, columns=["job_id", "job_key", "device_class", "workload", "objective"])


MAX_OR_GROUPS = 200  # more (device class, workload) groups than this: their bounds go into a temporary table


def _scan_joined(session, c: Constraints, base: str, params: dict, bounds: dict, op: str,
                 factor: float) -> pd.DataFrame:
    """The scan for many groups (a model swept over thousands of profiles):
    one bound per group in a temporary table joined by (class, workload),
    instead of an OR of thousands of terms (SQLite caps expression depth)."""
    session.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS farm_bounds (dc VARCHAR(128), wl VARCHAR(160), "
                         "b FLOAT)"))
    session.execute(text("DELETE FROM farm_bounds"))
    rows = [{"dc": g[0], "wl": g[1], "b": None if b is None else b * factor} for g, b in bounds.items()]
    session.execute(text("INSERT INTO farm_bounds (dc, wl, b) VALUES (:dc, :wl, :b)"), rows)
    objective = objective_sql(c)
    source = MEASUREMENTS_FIRST if MEASUREMENTS_FIRST in base else JOBS_FIRST
    joined = base.replace(source, f"{source} CROSS JOIN farm_bounds fb", 1)
    where = f"fb.dc = j.device_class AND fb.wl = {WORKLOAD} AND (fb.b IS NULL OR {objective} {op} fb.b)"
    columns = f"j.id, j.key, j.device_class, {WORKLOAD}, {objective}"
    found = _execute(session, f"SELECT {columns} {joined} AND {where}", params)
    session.execute(text("DELETE FROM farm_bounds"))
    return pd.DataFrame(found, columns=["job_id", "job_key", "device_class", "workload", "objective"])


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


def _in_groups(scan: pd.DataFrame, groups) -> pd.Series:
    """Rows of ``scan`` in any of the (device class, workload) ``groups``."""
    wanted = pd.MultiIndex.from_tuples(list(groups), names=["device_class", "workload"]) if groups else None
    if wanted is None:
        return pd.Series(False, index=scan.index)
    keys = pd.MultiIndex.from_frame(scan[["device_class", "workload"]])
    return pd.Series(keys.isin(wanted), index=scan.index)


def _unbounded_groups(scan: pd.DataFrame, bounds: dict, c: Constraints) -> list:
    """Groups where no current row is within (1+w) of the bound: their
    leader's window may reach past what was fetched."""
    pick = "min" if c.objective == "latency" else "max"
    best = scan.groupby(["device_class", "workload"])["objective"].agg(pick).to_dict() if len(scan) else {}
    redo = []
    for group, bound in bounds.items():
        if bound is None:
            continue
        value = best.get(group)
        near = value is not None and (value <= bound * (1 + TIE_WINDOW) if c.objective == "latency"
                                      else value >= bound / (1 + TIE_WINDOW))
        if not near:
            redo.append(group)
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
        filters, params = sql_conditions(c)
        source = _source(session, sweeps)
        base = _ELIGIBLE.format(source=source, status=_unindexed("j.status", source),
                                filters=filters + f" AND {_unindexed('j.device_class', source)} IN :classes")
        params.update(sweeps=sweeps, classes=classes)
        probed = _probe(session, c, base, params)
        # The probe and the scan share every filter: a group the probe did not see has no eligible
        # row, so only the probed groups are scanned (no pass over every job for the group list).
        bounds = dict(probed)
        scan = _drop_stale(session, _scan(session, c, base, params, bounds), sweeps)
        for widen in (4.0, 64.0, None):
            redo = _unbounded_groups(scan, bounds, c)
            if not redo:
                break
            bounds = {g: _widened(bounds[g], widen, c) for g in redo}
            again = _drop_stale(session, _scan(session, c, base, params, bounds), sweeps)
            scan = pd.concat([scan[~_in_groups(scan, redo)], again], ignore_index=True)
        scan = _within_window(scan, c)
        return _full_rows(session, scan["job_id"].tolist())


def _unindexed(column: str, source: str) -> str:
    """Jobs first: ``(column || '')`` keeps SQLite's planner on the sweep index (it otherwise walks
    the device-class or status index, every job of those classes: 0.97 s instead of 0.04 s for 100
    workloads among a million rows); the same value on PostgreSQL."""
    return f"({column} || '')" if source == JOBS_FIRST else column


def _source(session, sweeps: list[str]) -> str:
    """Jobs first for a model with few jobs (indexed by sweep), else measurements first."""
    jobs = _execute(session, f"SELECT count(*) FROM (SELECT 1 FROM jobs j WHERE j.sweep_id IN :sweeps "
                             f"LIMIT {JOBS_FIRST_BELOW}) few", {"sweeps": sweeps})[0][0]
    return JOBS_FIRST if jobs < JOBS_FIRST_BELOW else MEASUREMENTS_FIRST


def _widened(bound: float | None, factor: float | None, c: Constraints) -> float | None:
    """Every candidate near the bound was stale: look further (None: everything)."""
    if bound is None or factor is None:
        return None
    return bound * factor if c.objective == "latency" else bound / factor


def _within_window(scan: pd.DataFrame, c: Constraints) -> pd.DataFrame:
    if scan.empty:
        return scan
    pick = "min" if c.objective == "latency" else "max"
    leader = scan.groupby(["device_class", "workload"])["objective"].transform(pick)
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


def find_best(sweep_id: str | None = None, model: str | None = None,
              constraints: Constraints = Constraints()) -> pd.DataFrame:
    """What ``farm best``, ``fetch``, the HTML report and the dashboard use.

    A sweep is loaded whole; a model's results (possibly millions of rows)
    go through the windowed SQL scan in candidates.py first.
    """
    if sweep_id:
        return rank(load_frame(sweep_id=sweep_id), constraints)
    if constraints.objective in SERVING_OBJECTIVES:  # figures inside JSON: no SQL pre-filter, the model whole
        return rank(load_frame(model=model), constraints)
    # Scan with flagged and unchecked rows first: where none is there (the usual
    # case) the ranking is the same without them, else scan again without them.
    with_them = model_candidates(model, replace(constraints, allow_host_bound=True, allow_unchecked=True))
    if with_them.empty or not kept_out(with_them, constraints).any():
        return rank(with_them, constraints)
    ranked = rank(model_candidates(model, constraints), constraints)
    ranked.attrs["excluded"] = excluded(with_them, constraints)
    return ranked
