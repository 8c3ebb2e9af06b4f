"""Per-job hard time limits in a solo-pool worker, and the configuration
check that keeps them below Redis's visibility timeout."""

from __future__ import annotations

import os
import subprocess


import pytest

from tests.integration import farmdb
from tests.integration.conftest import TINY_MEASURE, wait_for


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_job_over_its_measure_limit_fails_and_the_worker_carries_on(redis_server, pg_url, tiny_model,
                                                                      farm_factory, tmp_path):
    farm = farm_factory({"FARM_DB_URL": pg_url, "FARM_BROKER_URL": redis_server.url,
                         "FARM_STORE_URL": str(tmp_path / "shared-artifacts"),
                         "FARM_EXTRA_BACKENDS": "sleepy=tests.integration.plugins.sleepy:SleepyConfig"})
    farm.start_worker("a")
    hung = farm.submit(farm.write_spec(tiny_model, 1, name="hung", backends=["sleepy"],
                                       timeouts={"build_s": 1, "measure_s": 60}))
    wait_for(lambda: farmdb.finished(hung), 90, what="the hung build to end")
    assert farmdb.jobs(hung)[0].error == "timed out: the build took longer than timeouts.build_s = 1 s"
    slow = farm.write_spec(tiny_model, 1, name="slow", measure={**TINY_MEASURE, "duration_ms": 20000},
                           timeouts={"build_s": 60, "measure_s": 1})
    sweep = farm.submit(slow)
    wait_for(lambda: farmdb.finished(sweep), 90, what="the slow job to end")
    job = farmdb.jobs(sweep)[0]
    assert job.status == "failed" and job.attempts == 1
    assert job.error == "timed out: the measure took longer than timeouts.measure_s = 1 s"
    assert farmdb.measurements_per_job(sweep) == {}
    after = farm.submit(farm.write_spec(tiny_model, 1, name="after"))  # the restarted worker runs it
    wait_for(lambda: farmdb.finished(after), 90, what="the next job")
    assert farmdb.statuses(after) == {"done": 1}


def test_limits_not_below_the_visibility_timeout_refuse_to_start(tmp_path):
    env = {**os.environ, "FARM_HOME": str(tmp_path), "FARM_BROKER_URL": "redis://127.0.0.1:1/0",
           "FARM_BUILD_TIMEOUT_S": "3000", "FARM_MEASURE_TIMEOUT_S": "600", "FARM_VISIBILITY_TIMEOUT_S": "3600"}
    result = subprocess.run(["farm", "worker", "start", "--device", "cpu"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: job time limits (build 3000 s + measure 600 s = 3600 s) must be below the Redis "
        "visibility timeout (3600 s, FARM_VISIBILITY_TIMEOUT_S)")


def test_spec_limits_not_below_the_visibility_timeout_are_refused(tmp_path, tiny_model, monkeypatch):
    from farm.errors import UserError
    from farm.queue import check_time_limits

    monkeypatch.setenv("FARM_BROKER_URL", "rediss://127.0.0.1:1/0")
    monkeypatch.setenv("FARM_VISIBILITY_TIMEOUT_S", "100")
    with pytest.raises(UserError, match="must be below the Redis visibility timeout"):
        check_time_limits({"build_s": 50, "measure_s": 60})
    check_time_limits({"build_s": 50, "measure_s": 40})
    monkeypatch.setenv("FARM_BROKER_URL", f"farmsql+sqlite:///{tmp_path}/b.db")
    check_time_limits({"build_s": 5000, "measure_s": 5000})  # no visibility timeout to outlive


def test_visibility_timeout_is_set_everywhere_celery_reads_it(monkeypatch):
    from farm.queue import make_app

    monkeypatch.setenv("FARM_VISIBILITY_TIMEOUT_S", "7200")
    conf = make_app("redis://127.0.0.1:1/0").conf
    assert conf.broker_transport_options["visibility_timeout"] == 7200
    assert conf.result_backend_transport_options["visibility_timeout"] == 7200
    assert conf.visibility_timeout == 7200
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
