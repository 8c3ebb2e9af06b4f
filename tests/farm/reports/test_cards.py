"""Every GPU figure carries its card, and only like is compared with like:
an H100's and an H200's results of the same configuration are two device
classes (the NVML name, farm/devices.py), each ranked, tied and re-measured
on its own; a faster H200 never displaces the H100's winner or ties with it."""

from __future__ import annotations

from datetime import datetime

from farm.db import Device, Job, Measurement, session_scope
from farm.devices import gpu_class
from farm.reports import find_best
from farm.stats import summarize
from seeding import H100, SWEEP, _samples

H200 = gpu_class("NVIDIA H200")


def _add_h200_twin() -> None:
    """j-fp16-b1's configuration measured on an H200, 20 % faster."""
    samples = _samples(0.80, 0.02)
    stats = summarize(samples, 1)
    with session_scope() as session:
        card = Device(uuid="GPU-2", kind="gpu", name="NVIDIA H200", device_class=H200, host="h2")
        session.add(card)
        session.flush()
        session.add(Job(id="j-fp16-b1-h200", sweep_id=SWEEP, seq=50, key="key-j-fp16-b1-h200", backend="tensorrt",
                        backend_version="10.0", precision="fp16", batch_size=1, profile="default", device_class=H200,
                        config={}, status="done", attempts=1, device_id=card.id, finished_at=datetime(2026, 1, 2, 1)))
        session.add(Measurement(job_id="j-fp16-b1-h200", attempt=1, device_id=card.id, samples_ms=samples,
                                count=stats["count"], mean_ms=stats["mean_ms"], p50_ms=stats["p50_ms"],
                                p90_ms=stats["p90_ms"], p95_ms=stats["p95_ms"], p99_ms=stats["p99_ms"],
                                stdev_ms=stats["stdev_ms"], cv=stats["cv"], throughput=stats["throughput"],
                                build_s=40.0, rel_l2_error=1e-3, cosine=0.99, accuracy_pass=True, flags=[],
                                created_at=datetime(2026, 1, 2, 1)))


def test_h100_and_h200_are_ranked_apart(known):
    assert gpu_class("NVIDIA H100 80GB HBM3") != H200
    before = find_best(sweep_id=SWEEP)
    h100_before = before[before["device_class"] == H100][["role", "job_id"]].to_dict("records")
    _add_h200_twin()
    best = find_best(sweep_id=SWEEP)
    h100 = best[best["device_class"] == H100]
    assert h100[["role", "job_id"]].to_dict("records") == h100_before  # the faster card changed nothing here
    h200 = best[best["device_class"] == H200]
    assert h200[["role", "job_id"]].to_dict("records") == [{"role": "winner", "job_id": "j-fp16-b1-h200"}]
    # A tie names only configurations of its own card.
    for _, row in best.iterrows():
        same = set(best[best["device_class"] == row["device_class"]]["job_id"])
        assert set(row["tied_with"] or []) <= same
