"""What reaches a worker through the broker: JSON only, duplicates run
once, jobs for a class nobody serves wait (and say so)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import pytest

from farm.routing import queue_for

from tests.integration import farmdb
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def _env(redis_server, pg_url, tmp_path) -> dict[str, str]:
    return {"FARM_DB_URL": pg_url, "FARM_BROKER_URL": redis_server.url,
            "FARM_STORE_URL": str(tmp_path / "shared-artifacts")}


class _Payload:
    """Unpickling this creates a file: proof the worker deserialized it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _publish_pickle(broker_url: str, queue: str, marker: str) -> None:
    from kombu import Connection, Exchange, Queue

    body = pickle.dumps(_Payload(marker))
    with Connection(broker_url) as connection:
        producer = connection.Producer()
        target = Queue(queue, Exchange(queue, type="direct"), routing_key=queue)
        producer.publish(body, serializer=None, content_type="application/x-python-serialize",
                         content_encoding="binary", routing_key=queue, exchange=target.exchange,
                         declare=[target],
                         headers={"task": "engine_farm.run_job", "id": "pickled.0", "lang": "py",
                                  "argsrepr": "()", "kwargsrepr": "{}"})


def test_pickle_message_is_refused_by_a_real_worker(redis_server, pg_url, tiny_model, farm_factory, tmp_path):
    from farm.devices import cpu_class

    farm = farm_factory(_env(redis_server, pg_url, tmp_path))
    farm.start_worker("a")
    wait_for(lambda: len(farmdb.live_devices()) == 1, 90, what="a live worker")
    marker = tmp_path / "unpickled"
    _publish_pickle(redis_server.url, queue_for(cpu_class(), "onnxruntime"), str(marker))
    sweep = farm.submit(farm.write_spec(tiny_model, 1))  # queued behind the pickle message
    wait_for(lambda: farmdb.finished(sweep), 60, what="the JSON job")
    assert farmdb.statuses(sweep) == {"done": 1}
    assert not marker.exists()
    log = farm.log("a")
    assert "ContentDisallowed" in log or "untrusted content" in log, log[-2000:]


def test_duplicate_messages_run_a_job_once(redis_server, pg_url, tiny_model, farm_factory, tmp_path):
    from farm.queue import send_jobs
    from farm.routing import route

    farm = farm_factory(_env(redis_server, pg_url, tmp_path))
    sweep = farm.submit(farm.write_spec(tiny_model, 4))
    jobs = [(j.id, route(j)) for j in farmdb.jobs(sweep)]
    send_jobs(jobs + jobs)  # every job now has three messages
    farm.start_worker("a")
    wait_for(lambda: farmdb.finished(sweep), 90, what="the sweep")
    assert set(farmdb.measurements_per_job(sweep).values()) == {1}
    assert {j.attempts for j in farmdb.jobs(sweep)} == {1}


def test_job_for_a_class_nobody_serves_waits(redis_server, pg_url, tiny_model, farm_factory, tmp_path):
    from farm.reconcile import reconcile

    farm = farm_factory(_env(redis_server, pg_url, tmp_path))
    farm.start_worker("a")
    wait_for(lambda: len(farmdb.live_devices()) == 1, 90, what="a live worker")
    sweep = farm.submit(farm.write_spec(tiny_model, 2, devices="cpu.x86_64.nowhere"))
    result = subprocess.run(["farm", "sweep", "status", sweep], capture_output=True, text=True,
                            env=dict(os.environ), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "waiting: no live worker serves cpu.x86_64.nowhere" in result.stdout
    assert farmdb.statuses(sweep) == {"queued": 2}
    # Its messages are still in the broker: no re-send, no duplicates piling up.
    assert not reconcile(grace_s=0)
    workers = subprocess.run(["farm", "workers", "--format", "json"], capture_output=True, text=True,
                             env=dict(os.environ), timeout=60)
    listed = json.loads(workers.stdout)
    # The live worker is listed and idle: the queued jobs are not its class's.
    assert [w["worker"].startswith("farm-cpu-a-") for w in listed] == [True]
    assert listed[0]["current_job"] is None


def test_second_worker_for_one_device_is_refused(redis_server, pg_url, farm_factory, tmp_path):
    """Without FARM_WORKER_INSTANCE two launchers would share one device row."""
    farm = farm_factory(_env(redis_server, pg_url, tmp_path))
    farm.start_worker("a")
    wait_for(lambda: len(farmdb.live_devices()) == 1, 90, what="a live worker")
    env = {**farm.env, "FARM_WORKER_INSTANCE": "a", "FARM_HOME": str(tmp_path / "other")}
    result = subprocess.run([sys.executable, "-m", "workers", "start", "--device", "cpu"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("Error: device cpu-")
    assert "FARM_WORKER_INSTANCE" in result.stderr


def test_resume_resends_only_what_the_broker_lost(redis_server, pg_url, tiny_model, farm_factory, tmp_path):
    import redis

    from farm.broker_state import ready_jobs
    from farm.devices import cpu_class

    farm = farm_factory(_env(redis_server, pg_url, tmp_path))
    sweep = farm.submit(farm.write_spec(tiny_model, 3))
    ids = {j.id for j in farmdb.jobs(sweep)}
    assert ready_jobs({queue_for(cpu_class(), "onnxruntime")}) == ids

    def resume() -> str:
        result = subprocess.run(["farm", "sweep", "resume", sweep], capture_output=True, text=True,
                                env=dict(os.environ), timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "(0 pending, 0 orphaned, 0 lost by the broker)" in resume()  # nothing lost: no duplicates
    redis.Redis.from_url(redis_server.url).flushall()  # the broker forgets everything
    assert "(0 pending, 0 orphaned, 3 lost by the broker)" in resume()
    assert ready_jobs({queue_for(cpu_class(), "onnxruntime")}) == ids
    farm.start_worker("a")
    wait_for(lambda: farmdb.finished(sweep), 90, what="the resumed sweep")
    assert set(farmdb.measurements_per_job(sweep).values()) == {1}
