"""A live search on the embedded defaults: real worker processes, real ONNX
Runtime builds, SQLite. The coordinator driving it is killed mid-search and
a new one carries on from the database; interleaved finals run on one
worker and store every round."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import yaml

from tests.integration.conftest import REPO, wait_for

SPEC = {
    "name": "search-it", "model": "models/det.onnx", "backends": ["onnxruntime"], "precisions": ["fp32", "int8"],
    "batch_sizes": [1, 2, 4, 8], "devices": "cpu",
    "profiles": [{"name": "p32", "inputs": {"images": {"min": [1, 3, 32, 32], "opt": [8, 3, 32, 32],
                                                       "max": [8, 3, 32, 32]}}}],
    "measure": {"warmup_ms": 5, "duration_ms": 40, "iterations": 5, "max_remeasure": 0},
    "search": {"strategy": "quick", "objective": "throughput",
               "axes": {"onnxruntime.intra_op_num_threads": [1, 2]},
               "finals": {"rounds": 3, "warmup_ms": 5, "duration_ms": 30}},
}


def query(home, sql: str, *args):
    with sqlite3.connect(home / "farm.db") as connection:
        return connection.execute(sql, args).fetchall()


@pytest.fixture(scope="module")
def farm_home(tmp_path_factory, tiny_cnn):
    tmp_path = tmp_path_factory.mktemp("search-it")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "det.onnx").write_bytes(tiny_cnn.read_bytes())
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env.update(FARM_HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO))
    workers = None
    try:
        submitted = subprocess.run([sys.executable, "-m", "farm", "sweep", "submit", "spec.yaml"], env=env,
                                   cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert submitted.returncode == 0, submitted.stderr
        log = open(tmp_path / "workers.log", "ab")
        workers = subprocess.Popen([sys.executable, "-m", "workers", "start", "--device", "cpu", "--loglevel",
                                    "WARNING"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        yield tmp_path, env, tmp_path / "home", submitted.stdout.strip()
    finally:
        if workers is not None and workers.poll() is None:
            os.killpg(workers.pid, signal.SIGTERM)
            try:
                workers.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(workers.pid, signal.SIGKILL)


def test_search_resumes_after_its_coordinator_is_killed(farm_home):
    cwd, env, home, sweep_id = farm_home
    driver = subprocess.Popen([sys.executable, "-m", "farm", "sweep", "drive", sweep_id], env=env, cwd=cwd,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for(lambda: query(home, "select count(*) from jobs where status='done'")[0][0] >= 2, 180,
             what="two finished jobs")
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    state = query(home, "select state from searches where sweep_id=?", sweep_id)[0][0]
    assert state == "searching"
    built_before = query(home, "select idx, job_id from search_candidates where sweep_id=? and job_id is not null",
                         sweep_id)
    time.sleep(1.0)  # the job in flight finishes while no coordinator is alive
    resumed = subprocess.run([sys.executable, "-m", "farm", "sweep", "drive", sweep_id], env=env, cwd=cwd,
                             capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr
    assert "search: quick (throughput), finished" in resumed.stdout
    # What was decided before the crash stands; nothing was built twice.
    after = dict(query(home, "select idx, job_id from search_candidates where sweep_id=? and job_id is not null",
                       sweep_id))
    assert all(after[idx] == job for idx, job in built_before)
    jobs = query(home, "select id, seq from jobs where sweep_id=?", sweep_id)
    assert sorted(j for j, _ in jobs) == sorted(after.values())
    assert len({seq for _, seq in jobs}) == len(jobs)
    states = dict(query(home, "select state, count(*) from search_candidates where sweep_id=? group by state",
                        sweep_id))
    assert set(states) <= {"built", "pruned", "skipped"} and sum(states.values()) == 16
    assert states["built"] < 16
    status = subprocess.run([sys.executable, "-m", "farm", "sweep", "status", sweep_id], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=60).stdout
    assert f"{states['built']} of 16 configurations built" in status and "winner cpu." in status
    report = subprocess.run([sys.executable, "-m", "farm", "report", sweep_id, "--format", "html", "-o",
                             str(cwd / "report.html")], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    page = (cwd / "report.html").read_text()
    assert f"<b>{states['built']} of 16 configurations built</b>" in page
    assert 'class="search-winners"' in page and "search-progress" in page and "search-fates" in page


def test_interleaved_finals_order_and_storage(farm_home):
    cwd, env, home, sweep_id = farm_home  # the search above has finished
    jobs = [j for (j,) in query(home, "select id from jobs where sweep_id=? and status='done' order by seq",
                                sweep_id)][:3]
    assert len(jobs) >= 2
    code = ("import json,sys\nfrom farm.db import session_scope\nfrom farm.search.finals import create_finals, "
            "send_queued\nwith session_scope() as s:\n i = create_finals(s, sys.argv[1], json.loads(sys.argv[2]), "
            "{'rounds': 3, 'warmup_ms': 5, 'duration_ms': 30, 'objective': 'latency'})\nsend_queued(finals_ids=[i])\n"
            "print(i)\n")
    device_class = query(home, "select device_class from jobs where id=?", jobs[0])[0][0]
    made = subprocess.run([sys.executable, "-c", code, device_class, __import__("json").dumps(jobs)], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    finals_id = made.stdout.strip()
    wait_for(lambda: query(home, "select status from finals where id=?", finals_id)[0][0] in ("done", "failed"), 120,
             what="the finals")
    assert query(home, "select status, error from finals where id=?", finals_id)[0] == ("done", None)
    rounds = query(home, "select round, position, job_id, samples_ms, telemetry, started_at from final_rounds "
                         "where finals_id=? order by started_at, id", finals_id)
    # A B C A B C A B C: every round times every candidate once, in the same order.
    assert [(r, p, j) for r, p, j, *_ in rounds] == [(r, p, jobs[p]) for r in range(3) for p in range(len(jobs))]
    assert all(len(__import__("json").loads(s)) >= 5 for *_, s, _t, _ in rounds)
    assert all(t is not None for *_, t, _ in rounds)  # the NVML summary where there is a GPU; {} on a CPU
    workers = {w for (w,) in query(home, "select worker from finals where id=?", finals_id)}
    assert len(workers) == 1


def test_bayes_is_seeded_with_the_earlier_results_and_quick_is_hinted_by_other_workloads(farm_home):
    cwd, env, home, sweep_id = farm_home  # the quick search above has finished
    spec = {**SPEC, "name": "search-bayes", "search": {**SPEC["search"], "strategy": "bayes", "budget": 4}}
    (cwd / "bayes.yaml").write_text(yaml.safe_dump(spec))
    other = {**SPEC, "name": "search-p24", "profiles": [{"name": "p24", "inputs": {"images": {
        "min": [1, 3, 24, 24], "opt": [8, 3, 24, 24], "max": [8, 3, 24, 24]}}}]}  # another workload of the model
    (cwd / "p24.yaml").write_text(yaml.safe_dump(other))
    code = ("import sys\nfrom farm.db import session_scope\nfrom farm.search.config import SearchConfig\n"
            "from farm.search.driver import _seeds, load_state\nfrom farm.service import submit\n"
            "from farm.spec import load_spec\n"
            "for name in ('bayes.yaml', 'p24.yaml'):\n sid = submit(load_spec(name), enqueue=False).sweep_id\n"
            " with session_scope() as s:\n  search, rows, cands, obs, pend, order = load_state(s, sid)\n"
            "  priors, hints = _seeds(s, sid, cands, SearchConfig.from_json(search.config))\n"
            "  groups = {c.group for c in cands}\n"
            "  print(sum(len(v) for v in priors.values()), sum(len(v) for v in hints.values()), "
            "set(hints) <= groups)\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (priors, hints, inside), (priors24, hints24, inside24) = [line.split() for line in done.stdout.splitlines()[-2:]]
    finished = query(home, "select count(*) from jobs where sweep_id=? and status='done'", sweep_id)[0][0]
    assert 0 < int(priors) <= finished  # every feasible finished result of the quick search, none invented
    assert int(hints) >= int(priors) and inside == "True"
    # quick on 24x24 inputs: no TPE seed, but the 32x32 results that passed the gate order what it tries first
    # (the eligibility rule's accuracy side, farm/reports/eligibility.py: pass or reference; unchecked, e.g.
    # int8 calibrated on synthetic inputs, is no hint, as it is no winner of farm best)
    passed = query(home, "select count(*) from jobs j join measurements m on m.job_id = j.id where j.sweep_id=? "
                         "and j.status='done' and m.measured and coalesce(m.accuracy_status, case when "
                         "m.accuracy_pass then 'pass' when not m.accuracy_pass then 'fail' else 'unchecked' end) "
                         "in ('pass', 'reference')", sweep_id)[0][0]
    assert int(priors24) == 0 and int(hints24) >= passed > 0 and inside24 == "True"  # >=: the bayes sweep's reuses


def test_a_submitted_search_runs_to_its_end_with_workers_alone(farm_home):
    cwd, env, home, _ = farm_home  # the workers above are still running; no 'farm sweep drive' from here on
    spec = {**SPEC, "name": "search-alone", "precisions": ["fp32"], "batch_sizes": [1, 2],
            "measure": {**SPEC["measure"], "duration_ms": 30},  # another job key: built, not reused
            "search": {"strategy": "quick", "objective": "throughput",
                       "finals": {"rounds": 2, "warmup_ms": 5, "duration_ms": 20}}}
    (cwd / "alone.yaml").write_text(yaml.safe_dump(spec))
    submitted = subprocess.run([sys.executable, "-m", "farm", "sweep", "submit", "alone.yaml"], env=env, cwd=cwd,
                               capture_output=True, text=True, timeout=120)
    assert submitted.returncode == 0, submitted.stderr
    assert "the workers carry it on" in submitted.stderr
    sweep_id = submitted.stdout.strip()
    wait_for(lambda: query(home, "select state from searches where sweep_id=?", sweep_id)[0][0] == "finished", 90,
             what="the search finished by its workers' completion hooks")
    done = {j for (j,) in query(home, "select id from jobs where sweep_id=? and status='done'", sweep_id)}
    assert len(done) == 2  # the top batch first, then one step down
    result = __import__("json").loads(query(home, "select result from searches where sweep_id=?", sweep_id)[0][0])
    assert [entry["winner"] in done for entry in result.values()] == [True]


def test_a_search_whose_first_step_reuses_only_old_jobs_goes_on(farm_home):
    """Issue 24 finding 8: its first step proposed only configurations with
    finished identical jobs, so no job ran, no completion took the next
    step, and the search sat idle (7.5 min) until 'farm sweep drive'."""
    cwd, env, home, _ = farm_home
    spec = yaml.safe_load((cwd / "alone.yaml").read_text())  # the search above: every job it builds exists now
    (cwd / "again.yaml").write_text(yaml.safe_dump({**spec, "name": "search-again"}))
    submitted = subprocess.run([sys.executable, "-m", "farm", "sweep", "submit", "again.yaml"], env=env, cwd=cwd,
                               capture_output=True, text=True, timeout=120)
    assert submitted.returncode == 0, submitted.stderr
    sweep_id = submitted.stdout.strip()
    reused = query(home, "select count(*) from jobs where sweep_id=? and result_job_id is not null", sweep_id)
    assert reused[0][0] >= 1
    wait_for(lambda: query(home, "select state from searches where sweep_id=?", sweep_id)[0][0] == "finished", 90,
             what="the search to go on past its reused first step")


def test_force_makes_every_step_of_a_search_build_anew(farm_home):
    """Issue 24 finding 8: 'farm sweep submit --force' of a search reused
    finished identical jobs anyway (the search's steps ignored it). The flag
    is kept with the search, so the steps the workers take honour it too."""
    cwd, env, home, _ = farm_home
    spec = yaml.safe_load((cwd / "alone.yaml").read_text())  # every job this search builds exists already
    (cwd / "forced.yaml").write_text(yaml.safe_dump({**spec, "name": "search-forced"}))
    submitted = subprocess.run([sys.executable, "-m", "farm", "sweep", "submit", "--force", "forced.yaml"], env=env,
                               cwd=cwd, capture_output=True, text=True, timeout=120)
    assert submitted.returncode == 0, submitted.stderr
    sweep_id = submitted.stdout.strip()
    wait_for(lambda: query(home, "select state from searches where sweep_id=?", sweep_id)[0][0] == "finished", 120,
             what="the forced search finished by its workers")
    jobs = query(home, "select status, result_job_id from jobs where sweep_id=?", sweep_id)
    assert jobs and all(reused is None for _, reused in jobs)
    measured = query(home, "select count(distinct m.job_id) from measurements m join jobs j on j.id = m.job_id "
                           "where j.sweep_id=?", sweep_id)[0][0]
    assert measured == sum(status == "done" for status, _ in jobs) >= 1
