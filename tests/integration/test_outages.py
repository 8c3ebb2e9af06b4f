"""Outages of the real servers at the worst moments: PostgreSQL stopped
while jobs write their results (briefly, and for longer than workers
retry), PostgreSQL down while messages wait in Redis, Redis down under
``farm sweep resume``, and three shells submitting one new model at once.
Nothing stuck, nothing lost, one result per job."""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
import time
import uuid

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

from tests.integration import farmdb
from tests.integration.conftest import REPO, TINY_MEASURE, wait_for
from tests.integration.pgserver import PostgresServer, server_bin

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def pg_cluster():
    if server_bin() is None:
        pytest.skip("the PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    server = PostgresServer()
    server.init()
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def private_pg(pg_cluster):
    """A fresh database on the private server, which is up at the start."""
    from farm.db import upgrade
    from farm.db.session import dispose_engines

    pg_cluster.start() if _down(pg_cluster) else None
    url = pg_cluster.create_database(f"farm_{uuid.uuid4().hex[:8]}")
    upgrade(url)
    yield url
    dispose_engines()
    if _down(pg_cluster):
        pg_cluster.start()


def _down(server: PostgresServer) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", server.port)) != 0


def _env(redis_server, url, tmp_path, **extra) -> dict[str, str]:
    return {"FARM_DB_URL": url, "FARM_BROKER_URL": redis_server.url,
            "FARM_STORE_URL": str(tmp_path / "shared-artifacts"), **extra}


def _one_result_each(sweep: str, total: int) -> list:
    jobs = farmdb.jobs(sweep)
    assert [j.status for j in jobs] == ["done"] * total, {j.id: (j.status, j.error) for j in jobs}
    per_job = farmdb.measurements_per_job(sweep)
    assert len(per_job) == total and set(per_job.values()) == {1}, per_job
    return jobs


def _measuring(sweep: str, count: int):
    """Jobs running now (their timing loops last seconds)."""
    running = [j for j in farmdb.jobs(sweep) if j.status == "running"]
    return running if len(running) >= count else None


def _warm_up(farm, model, workers: int) -> None:
    """One job per worker first: imports and the model fetch are done, so
    the next jobs spend their time in their timing loops."""
    warm = farm.submit(farm.write_spec(model, workers, name="warm-up"))
    wait_for(lambda: farmdb.finished(warm), 120, interval=0.2, what="the warm-up jobs")


def _redis_client(redis_server):
    import redis

    return redis.Redis(host="127.0.0.1", port=redis_server.port)


def test_database_stopped_while_results_are_written(redis_server, private_pg, pg_cluster, tiny_model,
                                                    farm_factory, tmp_path):
    """PostgreSQL goes down while two jobs measure and comes back after they
    tried to write their results: the workers retry the write, so each job
    ends done at its first attempt, and nothing stays running."""
    farm = farm_factory(_env(redis_server, private_pg, tmp_path, FARM_STALE_S="60"))
    for instance in ("a", "b"):
        farm.start_worker(instance)
    wait_for(lambda: len(farmdb.live_devices()) == 2, 90, what="two live workers")
    _warm_up(farm, tiny_model, 2)
    sweep = farm.submit(farm.write_spec(tiny_model, 4, measure={**TINY_MEASURE, "duration_ms": 2000}))
    wait_for(lambda: _measuring(sweep, 2), 60, interval=0.05, what="two jobs running")
    time.sleep(0.4)
    pg_cluster.stop()
    time.sleep(5)  # both timing loops end, and their result writes fail, while the database is down
    pg_cluster.start()
    wait_for(lambda: farmdb.finished(sweep), 120, interval=0.5, what="the sweep to finish")
    jobs = _one_result_each(sweep, 4)
    assert [j.attempts for j in jobs] == [1, 1, 1, 1]
    assert all(d.current_job_id is None for d in farmdb.live_devices())
    assert "database unreachable, retrying" in farm.log("a") + farm.log("b")


def test_outage_longer_than_the_retry_window_hands_the_job_on(redis_server, private_pg, pg_cluster, tiny_model,
                                                               farm_factory, tmp_path):
    """The database stays down past FARM_DB_RETRY_S: the worker gives its
    job up and restarts, and once the database is back the reconciler hands
    the job to a worker; nothing is left running, no result is doubled."""
    farm = farm_factory(_env(redis_server, private_pg, tmp_path, FARM_DB_RETRY_S="2"))
    farm.start_worker("a")
    wait_for(lambda: len(farmdb.live_devices()) == 1, 90, what="a live worker")
    _warm_up(farm, tiny_model, 1)
    sweep = farm.submit(farm.write_spec(tiny_model, 3, measure={**TINY_MEASURE, "duration_ms": 2000}))
    [running] = wait_for(lambda: _measuring(sweep, 1), 60, interval=0.05, what="a job running")
    time.sleep(0.4)
    pg_cluster.stop()
    time.sleep(8)
    pg_cluster.start()
    wait_for(lambda: farmdb.finished(sweep), 150, interval=0.5, what="the sweep to finish")
    jobs = {j.id: j for j in _one_result_each(sweep, 3)}
    assert jobs[running.id].attempts == 2 and jobs[running.id].worker != running.worker
    assert "stopping this worker so that the reconciler hands job" in farm.log("a")


def test_workers_do_not_drain_the_queue_while_the_database_is_down(redis_server, private_pg, pg_cluster,
                                                                    tiny_model, farm_factory, tmp_path):
    """Messages that reach idle workers while the job table is unreachable
    stay in Redis (one in each worker's hands at most, given back when the
    claim gives up: FARM_DB_RETRY_S); none is acked into a failure, and
    once the database is back every job runs once."""
    from farm.queue import send_jobs
    from farm.routing import route

    farm = farm_factory(_env(redis_server, private_pg, tmp_path, FARM_STALE_S="60", FARM_DB_RETRY_S="1"))
    for instance in ("a", "b"):
        farm.start_worker(instance)
    wait_for(lambda: len(farmdb.live_devices()) == 2, 90, what="two live workers")
    from farm.service import submit
    from farm.spec import load_spec

    sweep = submit(load_spec(farm.write_spec(tiny_model, 10)), enqueue=False).sweep_id
    jobs = farmdb.jobs(sweep)
    where = route(jobs[0])
    queue = where.queue
    pg_cluster.stop()
    send_jobs([(job.id, where) for job in jobs])  # e.g. sent just before the outage began
    client = _redis_client(redis_server)
    seen = []
    for _ in range(10):
        time.sleep(0.5)
        seen.append(tuple(client.pipeline(transaction=True).llen(queue).hlen("unacked").execute()))  # one instant
    pg_cluster.start()
    # No worker takes more than its one message: at least 8 stay ready. A message being fetched is briefly
    # in neither list (kombu's Redis transport pops it with BRPOP, then records it in 'unacked' in a second
    # command; a loaded worker can sit between the two: seen once at load 6), so the pair sums to 8-10;
    # that none is lost is checked below (every job runs once, every message is acked).
    assert all(ready >= 8 and 8 <= ready + unacked <= 10 for ready, unacked in seen), seen
    wait_for(lambda: farmdb.finished(sweep), 120, interval=0.5, what="the sweep to finish")
    assert max(j.attempts for j in _one_result_each(sweep, 10)) == 1
    assert "the message goes back to the broker" in farm.log("a") + farm.log("b")
    wait_for(lambda: client.hlen("unacked") == 0 and client.llen(queue) == 0, 20, what="every message acked")


def test_resume_while_redis_is_down_is_one_error_line(redis_server, pg_url, tiny_model, farm_factory, tmp_path):
    farm = farm_factory(_env(redis_server, pg_url, tmp_path))
    sweep = farm.submit(farm.write_spec(tiny_model, 2))
    before = [(j.id, j.status, j.queued_at) for j in farmdb.jobs(sweep)]
    redis_server.stop()
    result = subprocess.run([sys.executable, "-m", "farm", "sweep", "resume", sweep], env=farm.env,
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: cannot reach the broker at {redis_server.url}")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert [(j.id, j.status, j.queued_at) for j in farmdb.jobs(sweep)] == before


def _big_model(path, megabytes: int = 24):
    """A model whose upload to the store takes a while: the window in which
    a racing submission used to find no model row and insert a second."""
    rng = np.random.default_rng(3)
    weight = rng.normal(size=(megabytes * 1024 * 256 // 64, 64)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "big",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", weight.shape[0]])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 64])],
                              [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _submit_at_once(env: dict, spec_path: str, barrier, out) -> None:
    import os

    os.environ.update(env)
    try:
        from farm.service import submit
        from farm.spec import load_spec

        spec = load_spec(spec_path)
        barrier.wait()
        out.put(("ok", submit(spec, enqueue=False).sweep_id))
    except BaseException as exc:  # reported to the test, which fails with it
        out.put(("error", f"{type(exc).__name__}: {exc}"))


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_concurrent_first_submissions_of_one_model(database, pg_url, tmp_path):
    url = pg_url if database == "postgresql" else f"sqlite:///{tmp_path / 'farm.db'}"
    env = {"FARM_DB_URL": url, "FARM_HOME": str(tmp_path / "home"), "FARM_STORE_URL": str(tmp_path / "store"),
           "FARM_BROKER_URL": f"farmsql+sqlite:///{tmp_path / 'broker.db'}", "PYTHONPATH": str(REPO)}
    if database == "sqlite":
        from farm.db import upgrade

        upgrade(url)
    model = _big_model(tmp_path / "new-model.onnx")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "race", "model": str(model), "backends": ["onnxruntime"],
                                    "precisions": ["fp32"], "batch_sizes": [1], "devices": "cpu"}))
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_submit_at_once, args=(env, str(spec), barrier, out)) for _ in range(3)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)
    assert [kind for kind, _ in results] == ["ok"] * 3, results
    from sqlalchemy import func, select

    from farm.db import Model, Sweep, session_scope

    with session_scope(url) as session:
        assert session.scalar(select(func.count()).select_from(Model)) == 1
        sweeps = list(session.scalars(select(Sweep)))
        assert len(sweeps) == 3 and len({s.model_id for s in sweeps}) == 1
