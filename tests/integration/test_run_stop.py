"""A stopped ``farm run`` stops its workers, and a held device is named.

``farm run`` ended by SIGTERM (``timeout``, a CI runner) or SIGHUP (a
closed terminal) leaves no worker process behind, frees the device, and the
next ``farm run`` starts; a worker that cannot get its device because a
live worker of this host holds it says which process holds it and since
when, in ``farm run``'s own error. Real processes on the embedded defaults."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import REPO, wait_for

pytestmark = pytest.mark.slow


def _spec(duration_ms: int) -> dict:
    return {"name": f"stop-{duration_ms}", "model": "models/det.onnx", "backends": ["onnxruntime"],
            "precisions": ["fp32"], "batch_sizes": [1], "devices": "cpu",
            "profiles": [{"name": "p32", "inputs": {"images": {"min": [1, 3, 32, 32], "opt": [1, 3, 32, 32],
                                                               "max": [1, 3, 32, 32]}}}],
            # a measurement that outlasts the test's signal: the job is running when farm run is stopped
            "measure": {"warmup_ms": 0, "duration_ms": duration_ms, "iterations": 5, "max_remeasure": 0}}


@pytest.fixture
def here(tmp_path, tiny_cnn):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "det.onnx").write_bytes(tiny_cnn.read_bytes())
    (tmp_path / "slow.yaml").write_text(yaml.safe_dump(_spec(120_000)))
    (tmp_path / "fast.yaml").write_text(yaml.safe_dump(_spec(30)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env.update(FARM_HOME=str(tmp_path / "home"), FARM_LOCK_DIR=str(tmp_path / "locks"), PYTHONPATH=str(REPO))
    started: list[subprocess.Popen] = []
    yield tmp_path, env, started
    for process in started:  # whatever a failed test left running
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()


def _holder(locks: Path) -> dict | None:
    """The launcher's record in its device lock file, once it holds the lock."""
    for path in locks.glob("*.lock") if locks.is_dir() else []:
        try:
            return json.loads(path.read_text())
        except ValueError:
            continue
    return None


def _session(sid: int) -> set[int]:
    """Live (non-zombie) processes of session ``sid``."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.add(int(entry))
    return found


def _running(home: Path) -> bool:
    try:
        with sqlite3.connect(home / "farm.db") as connection:
            return connection.execute("select count(*) from jobs where status='running'").fetchone()[0] > 0
    except sqlite3.Error:
        return False


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_farm_run_stopped_by_a_signal_leaves_no_worker_and_the_next_run_starts(here, stop):
    cwd, env, started = here
    run = subprocess.Popen([sys.executable, "-m", "farm", "run", "slow.yaml"], env=env, cwd=cwd,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started.append(run)
    holder = wait_for(lambda: _holder(cwd / "locks"), 120, interval=0.2, what="the launcher's device lock")
    wait_for(lambda: _running(cwd / "home"), 120, interval=0.2, what="a running job")
    tree = _session(holder["pid"])  # the launcher and its worker (start_new_session: its own session)
    assert holder["pid"] in tree and len(tree) >= 2, tree
    run.send_signal(stop)  # to farm run alone, as timeout(1) or a closing terminal does
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 1
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: stopped by {stop.name}; local workers stopped."), stderr
    assert "Traceback" not in stderr
    wait_for(lambda: not _session(holder["pid"]), 15, interval=0.2, what="the worker processes to end")
    lock = next((cwd / "locks").glob("*.lock"))
    with open(lock) as handle:  # the device is free: its lock can be taken at once
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    following = subprocess.run([sys.executable, "-m", "farm", "run", "fast.yaml"], env=env, cwd=cwd,
                               capture_output=True, text=True, timeout=300)
    assert following.returncode == 0, following.stderr


def test_a_held_device_is_named_in_farm_runs_error(here):
    cwd, env, started = here
    home = cwd / "home"
    other = subprocess.Popen([sys.executable, "-m", "workers", "start", "--device", "cpu", "--loglevel", "WARNING"],
                             env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    started.append(other)
    holder = wait_for(lambda: _holder(cwd / "locks"), 120, interval=0.2, what="the first launcher's device lock")
    assert holder["pid"] == other.pid and "workers start --device cpu" in holder["command"]
    # A second launcher for the held device: one line naming the holder and since when.
    second = subprocess.run([sys.executable, "-m", "workers", "start", "--device", "cpu"], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 1
    [line] = second.stderr.strip().splitlines()
    assert line.startswith("Error: device cpu-") and f"launcher pid {other.pid} (" in line, line
    assert f"since {holder['since']}" in line and "workers start --device cpu" in line, line
    # farm run's own error says the same (its workers could not get the device). The held
    # device's worker takes the slow job; farm run must not wait for it.
    run = subprocess.run([sys.executable, "-m", "farm", "run", "slow.yaml"], env=env, cwd=cwd, capture_output=True,
                         text=True, timeout=180)
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: the local workers could not start: device cpu-"), run.stderr
    assert f"launcher pid {other.pid} (" in last and f"since {holder['since']}" in last, last
    assert "Traceback" not in run.stderr
    assert other.poll() is None and _running(home) is not None  # the holder was left alone
