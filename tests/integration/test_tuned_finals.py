"""Builds sized to the decision (farm/tuned.py), end to end on the embedded
defaults: a sweep screened with fast builds, then ``farm best --remeasure``
rebuilds each finalist with its backend's tuned build on the finals' worker
and times fast and tuned interleaved in the same rounds. Real worker
processes and real ONNX Runtime builds; the ``ort-tuned`` plugin is ONNX
Runtime with a tuned build (level ``all`` for ``basic``) standing in for
the GPU backends' (torch max-autotune, TensorRT level 5)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys

import pytest
import yaml

from tests.integration.conftest import REPO, wait_for

PLUGIN = "ort-tuned=tests.integration.plugins.ort_tuned:OrtTunedConfig"
SPEC = {
    "name": "tuned-it", "model": "models/det.onnx", "backends": ["ort-tuned"], "precisions": ["fp32"],
    "batch_sizes": [1, 2], "devices": "cpu",
    "profiles": [{"name": "p32", "inputs": {"images": {"min": [1, 3, 32, 32], "opt": [2, 3, 32, 32],
                                                       "max": [2, 3, 32, 32]}}}],
    "measure": {"warmup_ms": 5, "duration_ms": 40, "iterations": 5, "max_remeasure": 0},
    "build": {"ort-tuned": {"graph_optimization_level": "basic"}},
}


def query(home, sql: str, *args):
    with sqlite3.connect(home / "farm.db") as connection:
        return connection.execute(sql, args).fetchall()


@pytest.fixture(scope="module")
def screened(tmp_path_factory, tiny_cnn):
    tmp_path = tmp_path_factory.mktemp("tuned-it")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "det.onnx").write_bytes(tiny_cnn.read_bytes())
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env.update(FARM_HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO), FARM_EXTRA_BACKENDS=PLUGIN)
    workers = None
    try:
        submitted = subprocess.run([sys.executable, "-m", "farm", "sweep", "submit", "spec.yaml"], env=env,
                                   cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert submitted.returncode == 0, submitted.stderr
        sweep_id = submitted.stdout.strip().splitlines()[-1]
        log = open(tmp_path / "workers.log", "ab")
        workers = subprocess.Popen([sys.executable, "-m", "workers", "start", "--device", "cpu", "--loglevel",
                                    "WARNING"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        home = tmp_path / "home"
        wait_for(lambda: query(home, "select count(*) from jobs where status='done'")[0][0] == 2, 240,
                 interval=0.5, what="the two screening jobs")
        yield tmp_path, env, home, sweep_id
    finally:
        if workers is not None and workers.poll() is None:
            os.killpg(workers.pid, signal.SIGTERM)
            try:
                workers.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(workers.pid, signal.SIGKILL)


def _remeasure(cwd, env, sweep_id) -> subprocess.CompletedProcess:
    # The sweep's scope: its top 3 by point estimate, both batch sizes (the model scope keeps only
    # candidates near the leader).
    return subprocess.run([sys.executable, "-m", "farm", "best", "--sweep", sweep_id, "--remeasure", "--format",
                           "json"], env=env, cwd=cwd, capture_output=True, text=True, timeout=400)


def test_remeasure_rebuilds_finalists_tuned_and_times_both_interleaved(screened):
    cwd, env, home, sweep_id = screened
    fast = [j for (j,) in query(home, "select id from jobs where sweep_id=? order by seq", sweep_id)]
    result = _remeasure(cwd, env, sweep_id)
    assert result.returncode == 0, result.stderr
    # Each finalist got a tuned sibling in its sweep, built and measured as an ordinary job.
    rows = query(home, "select id, status, config from jobs where sweep_id=? order by seq", sweep_id)
    tuned = {job_id: json.loads(config) for job_id, status, config in rows if job_id not in fast}
    assert len(tuned) == 2
    assert all(c["build"] == {"graph_optimization_level": "all"} for c in tuned.values())
    assert {status for job_id, status, _ in rows} == {"done"}
    (finals_id, settings, result_json), = query(home, "select id, settings, result from finals")
    pairs = json.loads(settings)["tuned_of"]
    assert set(pairs) == set(tuned) and set(pairs.values()) == set(fast)
    # Fast and tuned builds in the same rounds: every round times all four.
    rounds = query(home, "select round, job_id from final_rounds where finals_id=? order by round, position",
                   finals_id)
    for number in {r for r, _ in rounds}:
        assert sorted(j for r, j in rounds if r == number) == sorted(fast + list(tuned))
    gains = json.loads(result_json)["tuned"]
    assert {(g["fast_job_id"], g["tuned_job_id"]) for g in gains} == {(f, t) for t, f in pairs.items()}
    for g in gains:
        assert g["fast_p50_ms"] > 0 and g["tuned_p50_ms"] > 0 and g["left_out"] is None
        assert g["p50_gain_pct"] == pytest.approx(100 * (g["fast_p50_ms"] - g["tuned_p50_ms"]) / g["fast_p50_ms"])
        assert g["tuned_build_s"] > 0 and g["extra_build_s"] == pytest.approx(g["tuned_build_s"] - g["fast_build_s"])
    lines = [line for line in result.stderr.splitlines() if line.startswith("tuned build ")]
    assert len(lines) == 2 and all("interleaved rounds" in line and "graph_optimization_level all" in line
                                   for line in lines), result.stderr
    # The winner is one of the four, and fetchable like any other result.
    best = json.loads(result.stdout)
    assert best[0]["role"] == "winner" and best[0]["job_id"] in fast + list(tuned)


def test_a_second_remeasure_reuses_the_tuned_builds(screened):
    cwd, env, home, sweep_id = screened
    before = query(home, "select count(*) from jobs")[0][0]
    result = _remeasure(cwd, env, sweep_id)
    assert result.returncode == 0, result.stderr
    assert query(home, "select count(*) from jobs")[0][0] == before  # nothing built twice


def test_no_tuned_times_the_fast_builds_only(screened):
    cwd, env, home, _ = screened
    result = subprocess.run([sys.executable, "-m", "farm", "best", "models/det.onnx", "--no-tuned"], env=env,
                            cwd=cwd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.strip() == "Error: --no-tuned goes with --remeasure"


def test_a_searchs_finals_rebuild_its_finalists_tuned(screened):
    cwd, env, home, _ = screened
    spec = {**SPEC, "name": "tuned-search", "batch_sizes": [1, 2],
            "search": {"strategy": "brute", "objective": "latency",
                       "finals": {"top": 2, "rounds": 2, "warmup_ms": 5, "duration_ms": 30}}}
    (cwd / "search.yaml").write_text(yaml.safe_dump(spec))
    submitted = subprocess.run([sys.executable, "-m", "farm", "sweep", "submit", "search.yaml", "--force"], env=env,
                               cwd=cwd, capture_output=True, text=True, timeout=120)
    assert submitted.returncode == 0, submitted.stderr
    sweep_id = submitted.stdout.strip().splitlines()[-1]
    # Driven (a search whose first step reuses finished jobs has no job end for a worker to step it on).
    driven = subprocess.run([sys.executable, "-m", "farm", "sweep", "drive", sweep_id], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=400)
    assert driven.returncode == 0, driven.stderr
    assert query(home, "select state from searches where sweep_id=?", sweep_id)[0][0] == "finished"
    (settings, result), = query(home, "select settings, result from finals where sweep_id=?", sweep_id)
    # Each finalist (the screening test may leave one) is timed against its tuned sibling.
    finalists = json.loads(query(home, "select result from searches where sweep_id=?", sweep_id)[0][0])
    [entry] = finalists.values()
    pairs = json.loads(settings)["tuned_of"]
    assert sorted(pairs.values()) == sorted(entry["finalists"]) and len(json.loads(result)["tuned"]) == len(pairs)
    assert entry["decided_by"] == "interleaved finals" and entry["winner"] in set(pairs) | set(pairs.values())
    assert {s for (s,) in query(home, "select status from jobs where sweep_id=?", sweep_id)} == {"done"}
    status = subprocess.run([sys.executable, "-m", "farm", "sweep", "status", sweep_id], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=60)
    lines = [line.strip() for line in status.stdout.splitlines() if line.strip().startswith("tuned build ")]
    assert len(lines) == len(pairs) and all("interleaved rounds" in line for line in lines), status.stdout
