"""The two writes every job makes, its claim and its end, as statements.

On PostgreSQL each is one statement with data-modifying CTEs, run in
autocommit (farm.db.statement_scope): one round trip, atomic as any single
statement is. The statements are built once per process with bind
parameters and executed with each job's values: building and cache-keying
an expression of ~40 columns per job cost more than the database's own work
(~2 ms of a worker's time per job, measured by benchmarks/farm_overhead.py).
SQLite takes the same guarded statements in an ordinary transaction.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from sqlalchemy import bindparam, cast, exists, func, select, update
from sqlalchemy.orm import aliased

from farm.capabilities import BUILD, RUN
from farm.db import Artifact, Device, Job, Measurement, utcnow

# A build message may take a job that waits to be built; a run message also
# one whose engine was built elsewhere ("built").
CLAIMABLE = {BUILD: ("pending", "queued"), RUN: ("pending", "queued", "built")}


def ours(job_id, attempt, worker) -> tuple:
    """The guard of every end of a job: still running under this worker and
    attempt (a worker presumed dead cannot overwrite its successor)."""
    return Job.id == job_id, Job.status == "running", Job.attempts == attempt, Job.worker == worker


def claim_statement(job_id, worker, device_id, phase: str = RUN, now: datetime | None = None):
    """The guarded claim: only a claimable job becomes running, once."""
    return (update(Job)
            .where(Job.id == job_id, Job.status.in_(CLAIMABLE[phase]))
            .values(status="running", attempts=Job.attempts + 1, worker=worker, device_id=device_id,
                    started_at=utcnow() if now is None else now, error=None))


@lru_cache(maxsize=None)
def claim_on_device(phase: str):
    """PostgreSQL: lock our device row (if it is still ours), claim the job
    only then, and mark the device busy only if the claim matched; a job
    that is not claimable leaves the device as it was. Selects the claimed
    job. Parameters: p_job, p_worker, p_device, p_now."""
    held = (select(Device.id).where(Device.id == bindparam("p_device"), Device.worker == bindparam("p_worker"))
            .with_for_update().cte("held"))
    claimed = (claim_statement(bindparam("p_job"), bindparam("p_worker"), bindparam("p_device"), phase,
                               bindparam("p_now"))
               .where(exists(select(held.c.id))).returning(*Job.__table__.c).cte("claimed"))
    busy = (update(Device).where(Device.id.in_(select(held.c.id)), exists(select(claimed.c.id)))
            .values(current_job_id=bindparam("p_job"), last_heartbeat=func.timezone("UTC", func.clock_timestamp()))
            .returning(Device.id).cte("busy"))
    return select(aliased(Job, claimed)).add_cte(held, busy)


def claim_parameters(job_id: str, worker: str, device_id: int) -> dict:
    return {"p_job": job_id, "p_worker": worker, "p_device": device_id, "p_now": utcnow()}


@lru_cache(maxsize=None)
def end_statement(with_device: bool, artifacts: int):
    """PostgreSQL: the guarded end of a job and, only if it matched, the
    measurement, ``artifacts`` new artifact rows (an existing one left
    alone) and the device marked idle. Selects how many job rows matched.
    Parameters: end_parameters."""
    ended = (update(Job).where(*ours(bindparam("p_job"), bindparam("p_attempt"), bindparam("p_worker")))
             .values(status=bindparam("p_status"), artifact_sha256=bindparam("p_key"), error=bindparam("p_error"),
                     finished_at=bindparam("p_finished"), backend_version=bindparam("p_version"))
             .returning(Job.id).cte("ended"))
    landed = exists(select(ended.c.id))
    parts = [_insert_when(landed, Measurement, "m_")]
    parts += [_insert_when(landed, Artifact, f"a{index}_", conflict="sha256") for index in range(artifacts)]
    if with_device:
        parts.append(update(Device).where(Device.id == bindparam("p_device"), Device.worker == bindparam("p_worker"),
                                          Device.current_job_id == bindparam("p_job"), landed)
                     .values(current_job_id=None).returning(Device.id).cte("idle"))
    return select(func.count()).select_from(ended).add_cte(*parts)


def end_parameters(job: dict, measurement: Measurement, artifacts: list[dict]) -> dict:
    """``job``: p_job, p_attempt, p_worker, p_device, p_status, p_key,
    p_error, p_finished, p_version; the measurement's and the artifact
    rows' columns follow, each column given (its default where unset)."""
    values = {**job, **_row_parameters(Measurement, "m_", {
        attr.key: getattr(measurement, attr.key) for attr in Measurement.__mapper__.column_attrs
        if attr.key in measurement.__dict__})}
    for index, row in enumerate(artifacts):
        values.update(_row_parameters(Artifact, f"a{index}_", row))
    return values


def _insertable(table) -> list:
    return [column for column in table.c if column is not table.autoincrement_column]


def _insert_when(condition, entity, prefix: str, conflict: str | None = None):
    """INSERT ... SELECT <every column's parameter> WHERE ``condition``."""
    from sqlalchemy.dialects.postgresql import insert

    columns = _insertable(entity.__table__)
    chosen = select(*[cast(bindparam(prefix + column.key, type_=column.type), column.type) for column in columns])
    statement = insert(entity).from_select([c.key for c in columns], chosen.where(condition), include_defaults=False)
    if conflict:
        statement = statement.on_conflict_do_nothing(index_elements=[conflict])
    return statement.returning(entity.__table__.primary_key.columns.values()[0]).cte(prefix.rstrip("_"))


def _row_parameters(entity, prefix: str, values: dict) -> dict:
    parameters = {}
    for column in _insertable(entity.__table__):
        if column.key in values:
            value = values[column.key]
        elif column.default is not None and column.default.is_callable:
            value = column.default.arg(None)
        else:
            value = column.default.arg if column.default is not None and column.default.is_scalar else None
        parameters[prefix + column.key] = value
    return parameters
