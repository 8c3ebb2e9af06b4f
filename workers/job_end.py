"""The end-of-job writes: how a claimed job ends, and its artifacts stored.

Each end is one transaction guarded by this worker and attempt (a worker
presumed dead cannot overwrite its successor) that also marks the device
idle; on PostgreSQL the result's end is one statement (workers.job_writes).
Every write is retried while the database is down (farm.db.retry); if it
never comes back, ResultUnreachable.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update

from farm.db import FINAL_STATES, Artifact, Job, Measurement, session_scope, statement_scope, utcnow
from farm.db.retry import DatabaseUnavailable, retrying
from farm.db.upsert import insert_ignoring_duplicates
from farm.redact import mask
from workers import phases
from workers.backends.base import BuildResult, TimingResult
from workers.claim import clear_device, mark_idle
from workers.job_writes import end_parameters, end_statement, ours
from workers.measurement_row import measurement_row


class ResultUnreachable(Exception):
    """The job ran but its end could not be written: the job is still
    ``running`` under this worker, which must stop so the reconciler can
    hand the job to another (the task does that)."""


class Ends:
    """The ways a claimed job ends (finish, hand_back, record), each one
    guarded transaction that also marks the device idle."""

    def __init__(self, job_id: str, worker: str, attempt: int, device_id: int | None):
        self.job_id, self.worker, self.attempt, self.device_id = job_id, worker, attempt, device_id

    def _ours(self):
        return ours(self.job_id, self.attempt, self.worker)

    def write(self, transaction, what: str, window_s: float | None = None):
        try:
            return retrying(transaction, what, window_s)
        except DatabaseUnavailable as exc:
            raise ResultUnreachable(str(exc)) from exc

    def finish(self, status: str, error: str | None, window_s: float | None = None) -> str:
        def transaction():
            with session_scope(pre_ping=False) as session:
                session.execute(update(Job).where(*self._ours()).values(
                    status=status, error=mask(error) if error else error, finished_at=utcnow()))  # shown in reports
                mark_idle(session, self.job_id, self.worker, self.device_id)

        self.write(transaction, f"recording job {self.job_id} as {status}", window_s)
        return status

    def hand_back(self, why: str) -> None:
        """Back to queued without counting the attempt (the farm failed, not the job)."""
        def transaction():
            with session_scope(pre_ping=False) as session:
                session.execute(update(Job).where(*self._ours()).values(
                    status="queued", worker=None, attempts=Job.attempts - 1, queued_at=utcnow(),
                    error=f"attempt {self.attempt} handed back: {why}"))
                mark_idle(session, self.job_id, self.worker, self.device_id)

        self.write(transaction, f"handing job {self.job_id} back")

    def record(self, store, outcome: dict, job: Job) -> str:
        built: BuildResult = outcome["built"]
        timing: TimingResult | None = outcome["timing"]
        status = "unsupported" if outcome["unsupported"] else "done"

        def transaction() -> str:
            measurement = measurement_row(job, self.attempt, self.device_id, built, timing, outcome, key, extras)
            end = {"status": status, "artifact_sha256": key, "error": outcome["unsupported"],
                   "finished_at": finished_at, "backend_version": outcome["version"]}
            with statement_scope() as session:
                if session.get_bind().dialect.name == "postgresql":
                    landed = self._end_in_one_statement(session, end, measurement, rows)
                else:
                    landed = self._end_and_idle(session, update(Job).where(*self._ours()).values(**end)) == 1
                    if landed:
                        insert_artifacts(session, rows)
                        session.add(measurement)
                    else:
                        session.rollback()
                return status if landed else self._landed_before(session) or "superseded"

        key, extras, rows = put_outputs(store, self.job_id, built, job.config)
        if outcome.get("layer_profile"):
            extras["layer-profile"] = put_file(store, outcome["layer_profile"], "layer-profile", "application/json",
                                               {"job_id": self.job_id}, rows)
        if outcome.get("loadgen"):
            extras["loadgen-summaries"] = put_file(store, outcome["loadgen"], "loadgen-summaries",
                                                   "application/json", {"job_id": self.job_id}, rows)
        finished_at = utcnow()
        phases.lap("store")
        final = self.write(transaction, f"recording the result of job {self.job_id}")
        if final == status:
            remember_artifacts(rows)
        if final == "superseded":
            # Another worker took the job over (we were presumed dead): our
            # result must not land twice.
            clear_device(self.job_id, self.worker, self.device_id)
        phases.lap("record")
        return final

    def _end_and_idle(self, session, ended) -> int:
        """Apply the guarded job UPDATE ``ended`` and, when it matched, mark
        the device idle (SQLite). Returns how many job rows matched."""
        matched = session.execute(ended).rowcount
        if matched == 1:
            mark_idle(session, self.job_id, self.worker, self.device_id)
        return matched

    def _end_in_one_statement(self, session, end: dict, measurement: Measurement, rows: list[dict]) -> bool:
        """PostgreSQL: the end, the measurement, new artifact rows and the
        device marked idle in one statement (workers.job_writes)."""
        new_rows = [row for row in rows if row["sha256"] not in _recorded_artifacts]
        job = {"p_job": self.job_id, "p_attempt": self.attempt, "p_worker": self.worker, "p_device": self.device_id,
               "p_status": end["status"], "p_key": end["artifact_sha256"], "p_error": end["error"],
               "p_finished": end["finished_at"], "p_version": end["backend_version"]}
        statement = end_statement(self.device_id is not None, len(new_rows))
        # Core, not the ORM: the statement loads no objects.
        return session.connection().execute(statement, end_parameters(job, measurement, new_rows)).scalar_one() == 1

    def _landed_before(self, session) -> str | None:
        """Our own earlier attempt at this write committed (the connection
        broke before the commit was acknowledged)."""
        row = session.execute(select(Job.status).where(Job.id == self.job_id, Job.attempts == self.attempt,
                                                       Job.worker == self.worker)).scalar_one_or_none()
        return row if row in FINAL_STATES else None


def put_outputs(store, job_id: str, built: BuildResult, config: dict) -> tuple[str, dict, list[dict]]:
    """Store the engine and its extra artifacts; returns their keys and the
    artifact rows to insert with the result."""
    meta = {"job_id": job_id, "backend": config["backend"], "precision": config["precision"],
            "device_class": config["device_class"], **built.info}
    files = [("engine", built.artifact, built.media_type, meta)] + [
        (kind, path, "application/json" if path.suffix == ".json" else "application/octet-stream",
         {"job_id": job_id}) for kind, path in built.extra_artifacts.items()]
    keys: dict[str, str] = {}
    rows: list[dict] = []
    for kind, path, media_type, info in files:
        keys[kind] = put_file(store, path, kind, media_type, info, rows)
    key = keys.pop("engine")
    keys.update(built.info.get("extra_artifacts") or {})  # a build recorded by another worker
    return key, keys, rows


def put_file(store, path: Path, kind: str, media_type: str, meta: dict, rows: list[dict]) -> str:
    """Put ``path`` in the store; its artifact row joins ``rows``."""
    key = store.put_file(path)
    rows.append({"sha256": key, "size_bytes": path.stat().st_size, "kind": kind, "media_type": media_type,
                 "meta": meta})
    return key


_recorded_artifacts: set[str] = set()  # rows this process has seen committed


def insert_artifacts(session, rows: list[dict]) -> None:
    # Identical bytes from two workers at once (e.g. the same optimised
    # model for two batch sizes): the first row wins, the other is a no-op.
    # A row this process committed before is not sent again.
    for row in rows:
        if row["sha256"] not in _recorded_artifacts:
            session.execute(insert_ignoring_duplicates(session, Artifact, row, "sha256"))


def remember_artifacts(rows: list[dict]) -> None:
    _recorded_artifacts.update(row["sha256"] for row in rows)
