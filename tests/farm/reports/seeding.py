"""A small results database with known samples (shared by report and
dashboard tests). Expected answers are derived by hand in the tests."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from farm.db import Artifact, Device, Job, Measurement, Model, Sweep, session_scope
from farm.stats import summarize
from farm.store import open_store

H100, CPU = "gpu.nvidia-h100", "cpu.x86_64.test"


def _samples(center: float, spread: float, n: int = 101) -> list[float]:
    # Deterministic, symmetric around ``center``: the median is exactly center.
    return [round(v, 6) for v in np.linspace(center - spread, center + spread, n).tolist()]


# (job id, device class, backend, precision, batch, samples, p99 override, accuracy_pass, memory, build_s, flags)
CONFIGS = [
    ("j-fp32-b1", H100, "tensorrt", "fp32", 1, _samples(2.00, 0.05), None, True, 900.0, 30.0, []),
    ("j-fp16-b1", H100, "tensorrt", "fp16", 1, _samples(1.00, 0.02), 1.30, True, 500.0, 40.0, []),
    ("j-bf16-b1", H100, "tensorrt", "bf16", 1, _samples(1.002, 0.02), 1.10, True, 500.0, 45.0, ["throttled"]),
    ("j-int8-b1", H100, "tensorrt", "int8", 1, _samples(0.50, 0.01), None, False, 300.0, 90.0, []),
    ("j-fp16-b8", H100, "tensorrt", "fp16", 8, _samples(4.00, 0.05), None, True, 800.0, 50.0, []),
    ("j-cpu-fp32", CPU, "onnxruntime", "fp32", 1, _samples(20.0, 0.5), None, True, None, 1.0, []),
    ("j-cpu-int8", CPU, "onnxruntime", "int8", 1, _samples(10.0, 0.5), None, True, None, 5.0, ["unstable"]),
]
SWEEP = "sweep-known"


def seed(sweep_id: str = SWEEP) -> dict[str, str]:
    """Create the sweep; returns job id -> artifact sha256 (bytes in the store)."""
    store, artifacts = open_store(), {}
    with session_scope() as session:
        model = Model(sha256="ab" * 32, name="known.onnx", path="/models/known.onnx", size_bytes=10, inputs=[])
        session.add(model)
        session.flush()
        session.add(Sweep(id=sweep_id, name="known", model_id=model.id, spec={}, created_at=datetime(2026, 1, 2)))
        gpu = Device(uuid="GPU-1", kind="gpu", name="NVIDIA H100 80GB HBM3", device_class=H100, host="h1")
        cpu = Device(uuid="CPU-1", kind="cpu", name="Test CPU", device_class=CPU, host="h1")
        session.add_all([gpu, cpu])
        session.flush()
        for seq, (job_id, dc, backend, prec, batch, samples, p99, ok, mem, build, flags) in enumerate(CONFIGS):
            key = store.put_bytes(f"engine of {job_id}".encode())
            artifacts[job_id] = key
            session.add(Artifact(sha256=key, size_bytes=len(f"engine of {job_id}"), kind="engine"))
            session.add(Job(id=job_id, sweep_id=sweep_id, seq=seq, key=f"key-{job_id}", backend=backend,
                            backend_version="10.0", precision=prec, batch_size=batch, profile="default",
                            device_class=dc, config={}, status="done", attempts=1, artifact_sha256=key,
                            device_id=(gpu if dc == H100 else cpu).id, finished_at=datetime(2026, 1, 2, 1)))
            stats = summarize(samples, batch)
            session.add(Measurement(
                job_id=job_id, attempt=1, device_id=(gpu if dc == H100 else cpu).id, samples_ms=samples,
                count=stats["count"], mean_ms=stats["mean_ms"], p50_ms=stats["p50_ms"], p90_ms=stats["p90_ms"],
                p95_ms=stats["p95_ms"], p99_ms=p99 or stats["p99_ms"], stdev_ms=stats["stdev_ms"], cv=stats["cv"],
                throughput=stats["throughput"], build_s=build, artifact_size=1000 + seq, memory_mb=mem,
                rel_l2_error=0.5 if ok is False else 1e-3, cosine=0.99, accuracy_pass=ok, flags=flags,
                created_at=datetime(2026, 1, 2, 1)))
        session.add(Job(id="j-failed", sweep_id=sweep_id, seq=99, key="key-failed", backend="tensorrt",
                        backend_version="10.0", precision="fp8", batch_size=1, profile="default", device_class=H100,
                        config={}, status="failed", attempts=3, error="RuntimeError: boom"))
    return artifacts


def seed_rerun(sweep_id: str, factors: dict[str, float], drop: tuple[str, ...] = ()) -> dict[str, str]:
    """A second sweep of the same model and configurations (after seed()):
    each job's samples scaled by ``factors`` (default 1: identical samples),
    jobs in ``drop`` left out. Returns old job id -> new job id."""
    from sqlalchemy import select

    ids = {}
    with session_scope() as session:
        model = session.scalar(select(Model).where(Model.name == "known.onnx"))
        gpu, cpu = (session.scalar(select(Device).where(Device.uuid == u)) for u in ("GPU-1", "CPU-1"))
        session.add(Sweep(id=sweep_id, name="rerun", model_id=model.id, spec={}, created_at=datetime(2026, 1, 3)))
        for seq, (job_id, dc, backend, prec, batch, samples, p99, ok, mem, build, flags) in enumerate(CONFIGS):
            if job_id in drop:
                continue
            new_id = ids[job_id] = f"{job_id}-{sweep_id}"[:32]
            factor = factors.get(job_id, 1.0)
            samples = [round(v * factor, 6) for v in samples]
            device = gpu if dc == H100 else cpu
            session.add(Job(id=new_id, sweep_id=sweep_id, seq=seq, key=f"key-{new_id}", backend=backend,
                            backend_version="10.1", precision=prec, batch_size=batch, profile="default",
                            device_class=dc, config={}, status="done", attempts=1, device_id=device.id,
                            finished_at=datetime(2026, 1, 3, 1)))
            session.flush()
            stats = summarize(samples, batch)
            session.add(Measurement(
                job_id=new_id, attempt=1, device_id=device.id, samples_ms=samples, count=stats["count"],
                mean_ms=stats["mean_ms"], p50_ms=stats["p50_ms"], p90_ms=stats["p90_ms"], p95_ms=stats["p95_ms"],
                p99_ms=stats["p99_ms"], stdev_ms=stats["stdev_ms"], cv=stats["cv"], throughput=stats["throughput"],
                build_s=build, artifact_size=2000 + seq, memory_mb=mem, rel_l2_error=0.5 if ok is False else 1e-3,
                cosine=0.99, accuracy_pass=ok, flags=flags, created_at=datetime(2026, 1, 3, 1)))
    return ids
