"""farm/fetch.py: every selection path honours the same constraints.

``farm fetch --target ... --max-rel-error X`` never returns an unchecked or
failing engine (a seeded generator draws 60 result sets of engines built for
sm_89: measured ones passing, failing or unchecked, never-measured builds,
two profiles); ``MODEL`` and ``--target`` ask for --profile the same way."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from farm.db import Device, Job, Measurement, Model, Sweep, session_scope
from farm.errors import UserError
from farm.fetch import Request, result_row, select_artifact
from farm.reports.eligibility import Constraints
from farm.stats import summarize
from farm.store import open_store

L4 = "gpu.nvidia-l4"
RUNS_ON = {"compute_capabilities": ["8.9"], "library": "tensorrt-rtx", "library_version": "1.7.1",
           "version_match": "major.minor", "gpu_only": True}


def seed(rng: random.Random, sweep_id: str, n: int, profiles=("p",)) -> list[str]:
    store = open_store()
    with session_scope() as session:
        model = session.query(Model).filter_by(name="m.onnx").one_or_none()
        if model is None:
            model = Model(sha256="cd" * 32, name="m.onnx", path="/models/m.onnx", size_bytes=10, inputs=[])
            session.add(model)
            session.flush()
            session.add(Device(uuid="GPU-L4", kind="gpu", name="NVIDIA L4", device_class=L4, host="h",
                               compute_capability="8.9"))
        session.add(Sweep(id=sweep_id, name=sweep_id, model_id=model.id, spec={}, created_at=datetime(2026, 1, 2)))
        session.flush()
        ids = []
        for seq in range(n):
            job_id = f"{sweep_id}-{seq}"
            key = store.put_bytes(f"engine {job_id}".encode())
            kind = rng.choice(["pass", "pass", "fail", "unchecked", "built", "reference"])
            batch = rng.choice([1, 2, 4])
            finished = datetime(2026, 1, 2) + timedelta(minutes=rng.randint(0, 10_000))
            info = {"artifact_sha256": key, "runs_on": RUNS_ON}
            job = Job(id=job_id, sweep_id=sweep_id, seq=seq, key=f"k-{job_id}", backend="tensorrt-rtx",
                      backend_version="1.7.1", precision=rng.choice(["fp16", "int8", "fp32"]), batch_size=batch,
                      profile=rng.choice(profiles), device_class=L4, config={}, attempts=1,
                      status="built" if kind == "built" else "done", finished_at=finished)
            if kind == "built":
                job.build = {"artifact_sha256": key, "info": info}
            else:
                job.artifact_sha256 = key
            session.add(job)
            session.flush()
            if kind != "built":
                samples = [rng.uniform(1, 3) for _ in range(20)]
                stats = summarize(samples, batch)
                session.add(Measurement(
                    job_id=job_id, attempt=1, samples_ms=samples, count=stats["count"], mean_ms=stats["mean_ms"],
                    p50_ms=stats["p50_ms"], p90_ms=stats["p90_ms"], p95_ms=stats["p95_ms"], p99_ms=stats["p99_ms"],
                    stdev_ms=stats["stdev_ms"], cv=stats["cv"], throughput=stats["throughput"], build_s=1.0,
                    memory_mb=100.0, build_info=info, flags=[], created_at=finished,
                    rel_l2_error=None if kind == "unchecked" else (0.3 if kind == "fail" else rng.uniform(0, 0.02)),
                    accuracy_pass={"pass": True, "fail": False, "unchecked": None, "reference": True}[kind],
                    accuracy_status=kind))
            ids.append(job_id)
    return ids


@pytest.mark.parametrize("seed_value", range(0, 60, 10))
def test_fetch_target_with_max_rel_error_never_returns_an_unchecked_or_failing_engine(farm_home, seed_value):
    for offset in range(10):
        rng = random.Random(seed_value + offset)
        sweep_id = f"s{seed_value + offset}"
        seed(rng, sweep_id, rng.randint(1, 8))
        limit = rng.choice([0.001, 0.01, 0.05])
        for allow_unchecked in (False, True):
            request = Request(sweep_id=sweep_id, target="sm_89", output="x.engine",
                              constraints=Constraints(max_rel_error=limit, allow_unchecked=allow_unchecked))
            try:
                picked = select_artifact(request, host_devices=lambda: [])
            except UserError as exc:
                assert str(exc).count("\n") == 0
                continue
            row = result_row(picked.engine["job_id"])
            assert row["status"] == "done" and row["accuracy_status"] in ("pass", "reference"), row
            assert row["rel_l2_error"] is not None and row["rel_l2_error"] <= limit, row


def test_a_never_measured_engine_is_unchecked_on_every_path(farm_home):
    rng = random.Random(7)
    (job_id,) = seed(rng, "only", 0) or [None]  # an empty sweep, then one never-measured build
    with session_scope() as session:
        key = open_store().put_bytes(b"built engine")
        session.add(Job(id="b1", sweep_id="only", seq=0, key="k-b1", backend="tensorrt-rtx", backend_version="1.7.1",
                        precision="int8", batch_size=4, profile="p", device_class=L4, config={}, attempts=0,
                        status="built", build={"artifact_sha256": key, "info": {"runs_on": RUNS_ON}}))
    for request in (Request(sweep_id="only", target="sm_89"), Request(job_id="b1", target="sm_89")):
        with pytest.raises(UserError, match="never measured .status built.: its accuracy is unchecked"):
            picked = select_artifact(request, host_devices=lambda: [])
            from farm.fetch import refuse_unfit

            refuse_unfit(picked.engine, request)
    allowed = Request(sweep_id="only", target="sm_89", constraints=Constraints(allow_unchecked=True))
    assert select_artifact(allowed, host_devices=lambda: []).engine["job_id"] == "b1"
    bounded = Request(sweep_id="only", target="sm_89",
                      constraints=Constraints(allow_unchecked=True, max_rel_error=0.01))
    with pytest.raises(UserError, match="so --max-rel-error cannot be met"):
        select_artifact(bounded, host_devices=lambda: [])


def test_several_workloads_ask_for_profile_the_same_way_on_every_path(farm_home):
    rng = random.Random(3)
    seed(rng, "two", 12, profiles=("a", "b"))
    with session_scope() as session:  # every result fit, so the question is the only refusal
        for m in session.query(Measurement):
            m.accuracy_pass, m.accuracy_status, m.rel_l2_error = True, "pass", 0.001
        for job in session.query(Job).filter_by(status="built"):
            job.status = "done"
    questions = []
    for request in (Request(sweep_id="two", target="sm_89"), Request(sweep_id="two", device=L4)):
        with pytest.raises(UserError) as refused:
            select_artifact(request, host_devices=lambda: [])
        questions.append(str(refused.value).split("; choose one with --profile")[0])
    assert questions[0] == questions[1] == "the results hold several workloads (profiles a, b)"


def test_the_suggested_profile_command_runs(farm_home, tmp_path):
    rng = random.Random(5)
    seed(rng, "cli", 12, profiles=("a", "b"))
    with session_scope() as session:
        for m in session.query(Measurement):
            m.accuracy_pass, m.accuracy_status, m.rel_l2_error = True, "pass", 0.001
    env_home = str(farm_home)
    import os

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FARM_")}, "FARM_HOME": env_home}
    out = tmp_path / "x.engine"
    first = subprocess.run([sys.executable, "-m", "farm", "fetch", "--sweep", "cli", "--target", "sm_89", "-o",
                            str(out)], env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 1 and "choose one with --profile, e.g. farm fetch" in first.stderr, first.stderr
    import shlex

    suggested = shlex.split(first.stderr.split("e.g. ", 1)[1].strip())
    assert suggested[:2] == ["farm", "fetch"]
    again = subprocess.run([sys.executable, "-m", "farm", *suggested[1:]], env=env, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stderr
    assert out.read_bytes().startswith(b"engine cli-")
