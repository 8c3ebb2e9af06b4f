"""The windowed SQL path (model scope) must give exactly what the plain
pandas path gives over the full frame, including re-runs and reuse."""

from datetime import datetime, timedelta

import numpy as np
import pytest

from farm.db import Job, Measurement, Model, Sweep, session_scope
from farm.reports import Constraints, find_best, load_frame
from farm.reports.best import select_best

CLASSES = ["gpu.a", "gpu.b", "cpu.c"]


def _seed_random(rng):
    with session_scope() as session:
        session.add(Model(id=1, sha256="cd" * 32, name="rand.onnx", path="/m", size_bytes=1, inputs=[]))
        done_keys = {}
        for s in range(6):
            sweep = f"s{s}"
            created = datetime(2026, 1, 1) + timedelta(s)
            session.add(Sweep(id=sweep, name=sweep, model_id=1, spec={}, created_at=created))
            for i in range(250):
                dc, prec = CLASSES[rng.integers(3)], ["fp32", "fp16", "int8"][rng.integers(3)]
                batch = int(2 ** rng.integers(4))
                profile = f"p{rng.integers(6)}"
                key = f"{dc}/{prec}/{batch}/{profile}"
                job_id = f"{sweep}-{i}"
                reuse = key in done_keys and rng.random() < 0.5
                session.add(Job(id=job_id, sweep_id=sweep, seq=i, key=key, backend="trt", backend_version="1",
                                precision=prec, batch_size=batch, profile=profile, device_class=dc, config={},
                                status="done", attempts=1, result_job_id=done_keys.get(key) if reuse else None))
                if reuse:
                    continue
                session.flush()
                base = (1 + CLASSES.index(dc)) * batch ** 0.7 * {"fp32": 1, "fp16": 0.6, "int8": 0.4}[prec]
                samples = (base * (1 + rng.gamma(2, 0.02, size=int(rng.integers(5, 40))))).round(5).tolist()
                session.add(Measurement(
                    job_id=job_id, attempt=1, samples_ms=samples, count=len(samples), mean_ms=float(np.mean(samples)),
                    p50_ms=float(np.median(samples)), p99_ms=float(np.percentile(samples, 99)),
                    throughput=batch * 1000 / float(np.mean(samples)), memory_mb=float(rng.integers(100, 900)),
                    accuracy_pass=bool(rng.random() > 0.15), build_s=float(rng.random() * 10)))
                done_keys[key] = job_id


def _summary(best):
    return [(r["device_class"], r["role"], r["job_id"], r["tied_with"]) for r in best.to_dict("records")]


@pytest.mark.parametrize("join", ["jobs first", "measurements first"])
@pytest.mark.parametrize("constraints", [
    Constraints(), Constraints(objective="throughput"), Constraints(max_latency_ms=3.0),
    Constraints(max_memory_mb=500, latency_stat="p50", max_latency_ms=5.0), Constraints(device="gpu.b"),
])
def test_windowed_path_equals_full_frame(farm_home, constraints, join, monkeypatch):
    """Both join orders (a small model reads jobs first through the sweep
    index; a model holding most of the database scans measurements first)."""
    import farm.reports.candidates as candidates

    monkeypatch.setattr(candidates, "JOBS_FIRST_BELOW", 10**9 if join == "jobs first" else 0)
    _seed_random(np.random.default_rng(5))
    full = select_best(load_frame(model="rand.onnx"), constraints)
    assert len(full) >= 1
    assert _summary(find_best(model="rand.onnx", constraints=constraints)) == _summary(full)
