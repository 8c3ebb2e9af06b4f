"""Host contention recorded on CPU measurements and flagged host_contended
(issue 22): a flagged figure never wins farm best silently."""

from __future__ import annotations

import numpy as np
import pytest

from farm.reports.eligibility import Constraints
from farm.spec import MeasureConfig
from workers.timing import contention


def test_assess_measures_the_run_queue_wait_and_steal():
    before = {"load": 1.0, "cpu": (1000, 10), "sched": (1_000_000, 0)}
    after = {"load": 3.0, "cpu": (2000, 210), "sched": (3_000_000, 4_000_000)}
    record = contention.assess(before, after)
    assert record["wait_ratio"] == 2.0 and record["steal_fraction"] == 0.2
    assert record["load_1m_before"] == 1.0 and record["load_1m_after"] == 3.0 and record["cpus"] >= 1


def test_the_limit_decides(monkeypatch):
    quiet = {"load": 0.1, "cpu": (1000, 0), "sched": (1_000_000, 0)}
    busy = {"load": 0.1, "cpu": (2000, 0), "sched": (2_000_000, 1_500_000)}  # waited 1.5x its run time
    monkeypatch.setenv("ENGINE_FARM_CONTENDED_WAIT_RATIO", "1.0")
    assert contention.assess(quiet, busy)["contended"]
    monkeypatch.setenv("ENGINE_FARM_CONTENDED_WAIT_RATIO", "2.0")
    assert not contention.assess(quiet, busy)["contended"]
    monkeypatch.setenv("ENGINE_FARM_CONTENDED_WAIT_RATIO", "inf")
    assert not contention.assess(quiet, busy)["contended"]


def test_an_onnxruntime_measurement_records_host_load_and_flags_it(monkeypatch, tiny_cnn):
    import onnxruntime as ort

    from workers.backends.onnxruntime.backend import OnnxRuntimeRunner

    session = ort.InferenceSession(str(tiny_cnn), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    feeds = {name: np.zeros((1, 3, 32, 32), np.float32)}
    runner = OnnxRuntimeRunner(session, 1)
    monkeypatch.setenv("ENGINE_FARM_CONTENDED_WAIT_RATIO", "-1")  # any wait at all counts: flagged
    timing = runner.measure(feeds, MeasureConfig(warmup_ms=0, duration_ms=20, iterations=3))
    load = timing.telemetry["host_load"]
    assert load["cpus"] >= 1 and load["wait_ratio"] is not None and load["load_1m_after"] is not None
    assert timing.flags == ["host_contended"]
    monkeypatch.setenv("ENGINE_FARM_CONTENDED_WAIT_RATIO", "inf")
    assert runner.measure(feeds, MeasureConfig(warmup_ms=0, duration_ms=20, iterations=3)).flags == []


@pytest.mark.parametrize("allow", [False, True])
def test_a_contended_figure_is_not_eligible_unless_allowed(allow):
    row = {"status": "done", "latency_p50_ms": 1.0, "latency_p99_ms": 1.2, "throughput": 1000.0,
           "accuracy_status": "reference", "flags": ["host_contended"]}
    reason = Constraints(allow_host_bound=allow).violation(row)
    assert (reason is None) == allow
    if not allow:
        assert "host_contended" in reason
