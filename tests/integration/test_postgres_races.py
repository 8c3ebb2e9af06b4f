"""Guarded status transitions on PostgreSQL: racing claims, a superseded
worker's late result, one result row per attempt, racing reconcilers."""

from __future__ import annotations

import multiprocessing as mp
import random

import pytest
from sqlalchemy.exc import IntegrityError

from farm.db import Device, Job, Measurement, Model, Sweep, session_scope, utcnow

pytestmark = [pytest.mark.postgres]


def _seed(url: str, count: int, status: str = "queued") -> list[str]:
    with session_scope(url) as session:
        model = Model(sha256="0" * 64, name="m.onnx", path="m.onnx", size_bytes=1, inputs=[])
        session.add(model)
        session.flush()
        session.add(Sweep(id="s1", name="race", model_id=model.id, spec={}))
        ids = [f"job{i:04d}" for i in range(count)]
        for seq, job_id in enumerate(ids):
            session.add(Job(id=job_id, sweep_id="s1", seq=seq, key=job_id, backend="onnxruntime",
                            backend_version="1", precision="fp32", batch_size=1, profile="p",
                            device_class="cpu.test", config={}, status=status, attempts=0, queued_at=utcnow()))
    return ids


def _claim_all(url: str, worker: str, ids: list[str], barrier, out) -> None:
    import os

    os.environ["FARM_DB_URL"] = url
    from workers.claim import take

    random.Random(worker).shuffle(ids)
    barrier.wait()
    out.put((worker, {job_id: _attempt(take(job_id, worker, None)) for job_id in ids}))


def _attempt(claimed) -> int | None:
    """The attempt number a claim won, None when it lost."""
    return None if claimed is None else claimed.attempt


def test_two_workers_racing_claim_each_job_once(pg_url):
    ids = _seed(pg_url, 200)
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(pg_url, w, list(ids), barrier, out)) for w in ("w1", "w2")]
    for proc in procs:
        proc.start()
    results = dict(out.get(timeout=60) for _ in procs)
    for proc in procs:
        proc.join(10)
    won = {w: {j for j, attempt in claims.items() if attempt is not None} for w, claims in results.items()}
    assert won["w1"].isdisjoint(won["w2"]) and won["w1"] | won["w2"] == set(ids)
    assert won["w1"] and won["w2"]  # a real race, not one worker finishing first
    with session_scope(pg_url) as session:
        for job in session.query(Job):
            owner = "w1" if job.id in won["w1"] else "w2"
            assert (job.status, job.attempts, job.worker) == ("running", 1, owner)


def test_superseded_worker_cannot_finish_or_record(pg_url, monkeypatch):
    from farm.reconcile import Orphan, recover
    from workers.claim import take
    from workers.job_end import Ends

    monkeypatch.setenv("FARM_DB_URL", pg_url)
    [job_id] = _seed(pg_url, 1)
    assert take(job_id, "w1", None).attempt == 1
    assert recover(Orphan(job_id, "w1", 1, "cpu.test", "test: presumed dead")) == "requeued"
    assert recover(Orphan(job_id, "w1", 1, "cpu.test", "a second reconciler")) is None  # already done
    assert take(job_id, "w2", None).attempt == 2
    Ends(job_id, "w1", 1, None).finish("failed", "late news from w1")  # guarded by attempt and worker: no effect
    with session_scope(pg_url) as session:
        job = session.get(Job, job_id)
        assert (job.status, job.worker, job.attempts, job.error) == ("running", "w2", 2, None)
    Ends(job_id, "w2", 2, None).finish("done", None)
    with session_scope(pg_url) as session:
        assert session.get(Job, job_id).status == "done"


def test_one_result_row_per_job_attempt(pg_url):
    [job_id] = _seed(pg_url, 1)
    with session_scope(pg_url) as session:
        session.add(Measurement(job_id=job_id, attempt=1))
    with pytest.raises(IntegrityError):
        with session_scope(pg_url) as session:
            session.add(Measurement(job_id=job_id, attempt=1))


def test_alive_worker_is_never_an_orphan_but_a_stale_one_is(pg_url, monkeypatch):
    from datetime import timedelta

    from farm.reconcile import find_orphans, recover
    from workers.claim import take

    monkeypatch.setenv("FARM_DB_URL", pg_url)
    monkeypatch.setenv("FARM_STALE_S", "5")
    monkeypatch.setenv("FARM_MAX_ATTEMPTS", "2")
    ids = _seed(pg_url, 2)
    with session_scope(pg_url) as session:
        for n, job_id in enumerate(ids):
            session.add(Device(id=n + 1, uuid=f"cpu-{n}", kind="cpu", name="cpu", device_class="cpu.test",
                               host="h", worker=f"w{n}", current_job_id=job_id, last_heartbeat=utcnow(),
                               versions={}))
    for n, job_id in enumerate(ids):
        assert take(job_id, f"w{n}", n + 1).attempt == 1
    assert find_orphans() == []
    with session_scope(pg_url) as session:
        session.get(Device, 2).last_heartbeat = utcnow() - timedelta(seconds=6)
    [orphan] = find_orphans()
    assert orphan.job_id == ids[1] and "stopped heartbeating" in orphan.why
    assert recover(orphan) == "requeued"
    with session_scope(pg_url) as session:
        session.get(Device, 2).worker = "w1b"  # a new worker registered the device, then claims the job
    assert take(ids[1], "w1b", 2).attempt == 2
    with session_scope(pg_url) as session:
        session.get(Device, 2).worker = "w1c"  # the worker restarted: a new identity
    [orphan] = find_orphans()
    assert recover(orphan) == "quarantined"
    with session_scope(pg_url) as session:
        job = session.get(Job, ids[1])
        assert job.status == "failed" and job.error.startswith("quarantined after 2 attempts")
        assert session.get(Job, ids[0]).status == "running"


def test_take_marks_the_device_busy_in_the_claim_or_not_at_all(pg_url, monkeypatch):
    from workers.claim import DISPLACED, take

    monkeypatch.setenv("FARM_DB_URL", pg_url)
    ids = _seed(pg_url, 2)
    with session_scope(pg_url) as session:
        session.add(Device(id=1, uuid="cpu-0", kind="cpu", name="cpu", device_class="cpu.test", host="h",
                           worker="w1", last_heartbeat=utcnow(), versions={}))
    assert take(ids[0], "w2", 1) == DISPLACED  # not our device row: nothing claimed
    claimed = take(ids[0], "w1", 1)
    assert claimed.attempt == 1 and claimed.job.id == ids[0]
    with session_scope(pg_url) as session:
        assert session.get(Device, 1).current_job_id == ids[0]
        assert (session.get(Job, ids[0]).status, session.get(Job, ids[1]).status) == ("running", "queued")
        session.get(Job, ids[1]).status = "done"
    assert take(ids[1], "w1", 1) is None  # finished: the device keeps naming the job it runs
    with session_scope(pg_url) as session:
        assert session.get(Device, 1).current_job_id == ids[0]
    # Our own claim whose commit answer was lost (the message is redelivered): taken up, not skipped.
    again = take(ids[0], "w1", 1)
    assert again.attempt == 1 and again.job.id == ids[0]


def test_one_statement_end_writes_what_the_orm_writes_and_nothing_when_superseded(pg_url, monkeypatch):
    """PostgreSQL ends a job in one statement (workers.job_writes): the
    measurement row holds every column the ORM insert would, the device is
    idle, the artifact row is there once; a worker that lost its job writes
    nothing at all."""
    from farm.db import Artifact, statement_scope
    from workers.job_writes import end_parameters, end_statement

    monkeypatch.setenv("FARM_DB_URL", pg_url)
    ids = _seed(pg_url, 3, status="running")
    with session_scope(pg_url) as session:
        session.add(Device(id=1, uuid="cpu-0", kind="cpu", name="cpu", device_class="cpu.test", host="h",
                           worker="w1", last_heartbeat=utcnow(), versions={}, current_job_id=ids[1]))
        for job_id in ids:
            job = session.get(Job, job_id)
            job.worker, job.attempts = "w1", 1

    def measurement(job_id):
        return Measurement(job_id=job_id, attempt=1, device_id=1, samples_ms=[1.5, 2.5], p50_ms=2.0,
                           telemetry={"clocks": [1980]}, flags=["unstable"], build_info={"k": "v"}, accuracy_pass=True)

    with session_scope(pg_url) as session:
        session.add(measurement(ids[0]))
    artifact = {"sha256": "a" * 64, "size_bytes": 3, "kind": "engine", "media_type": "x", "meta": {"job_id": ids[1]}}

    def end(job_id, worker):
        job = {"p_job": job_id, "p_attempt": 1, "p_worker": worker, "p_device": 1, "p_status": "done",
               "p_key": "a" * 64, "p_error": None, "p_finished": utcnow(), "p_version": "1.2"}
        with statement_scope(pg_url) as session:
            return session.execute(end_statement(True, 1),
                                   end_parameters(job, measurement(job_id), [artifact])).scalar_one()

    assert end(ids[1], "w1") == 1
    assert end(ids[2], "w2") == 0  # not our job: no measurement, no artifact row, device untouched
    with session_scope(pg_url) as session:
        rows = {m.job_id: m for m in session.query(Measurement)}
        assert set(rows) == {ids[0], ids[1]}
        skip = {"id", "job_id", "created_at"}
        columns = [c.key for c in Measurement.__table__.c if c.key not in skip]
        assert {c: getattr(rows[ids[1]], c) for c in columns} == {c: getattr(rows[ids[0]], c) for c in columns}
        assert rows[ids[1]].created_at is not None
        job = session.get(Job, ids[1])
        assert (job.status, job.artifact_sha256, job.backend_version) == ("done", "a" * 64, "1.2")
        assert session.get(Job, ids[2]).status == "running"
        assert session.get(Device, 1).current_job_id is None
        assert session.query(Artifact).count() == 1
