"""The same library and worker with FARM_BROKER_URL=redis://127.0.0.1:6379:
no code change, a real Celery worker process consuming from Redis."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.redis


def farm(args, env, cwd) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "farm", *args], env=env, cwd=cwd, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def test_submit_and_worker_over_redis(tmp_path, tiny_cnn):
    shutil.copy(tiny_cnn, tmp_path / "det.onnx")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    # A database number of its own, so parallel runs on this Redis never meet.
    env.update(FARM_HOME=str(tmp_path / "home"), FARM_BROKER_URL=f"redis://127.0.0.1:6379/{random.randint(1, 15)}",
               FARM_WORKER_INSTANCE=f"redis-{os.getpid()}")
    worker = subprocess.Popen([sys.executable, "-m", "farm", "worker", "start", "--device", "cpu"], env=env,
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        sweep_id = farm(["sweep", "submit", "--model", "det.onnx", "--batch", "1", "--batch", "2", "--precision",
                         "fp32", "--profile", "p:images=1x3x16x16/2x3x16x16/2x3x16x16", "--duration-ms", "20",
                         "--warmup-ms", "0", "--iterations", "3", "--device", "cpu"], env, tmp_path).stdout.strip()
        deadline = time.time() + 90
        while time.time() < deadline:
            status = json.loads(farm(["sweep", "status", sweep_id, "--format", "json"], env, tmp_path).stdout)
            if status["state"] == "finished":
                break
            time.sleep(0.5)
        assert status["counts"] == {"done": 2}, status
        workers = json.loads(farm(["workers", "--format", "json"], env, tmp_path).stdout)
        assert any(w["worker"] and w["worker"].startswith("farm-cpu-redis-") for w in workers)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=40)
