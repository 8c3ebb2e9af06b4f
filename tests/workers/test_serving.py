"""The batching server, the Server QPS search and the energy arithmetic;
and one real (short) LoadGen run through ScenarioRunner."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from workers.energy import COUNTER, integrate, per_inference
from workers.serving.loadgen_run import ScenarioRunner, search_qps
from workers.serving.server import BatchingServer, Request, SamplePool


def _pool(size=8):
    feeds = {"x": np.arange(size * 3, dtype=np.float32).reshape(size, 3), "sr": np.array(16000)}
    return SamplePool(feeds, {"x"}, size)


def test_pool_pads_to_the_run_batch_and_keeps_unbatched_inputs():
    batch = _pool().batch([5, 2], run_batch=4)
    assert batch["x"].tolist() == [[15, 16, 17], [6, 7, 8], [6, 7, 8], [6, 7, 8]]
    assert int(batch["sr"]) == 16000


def _serve(requests: list[Request], max_batch: int, delay_us: int, instances: int = 1, spacing_s: float = 0.0):
    seen: list[tuple[int, ...]] = []
    done: list[int] = []
    lock = threading.Lock()

    def execute(feeds):
        time.sleep(0.002)
        with lock:
            seen.append(feeds["x"].shape)
        return {"y": feeds["x"].sum(axis=1)}

    def complete(batch):
        with lock:
            done.extend(r.request_id for r in batch)

    server = BatchingServer([execute] * instances, _pool(), max_batch=max_batch, run_batch=4,
                            queue_delay_us=delay_us, complete=complete)
    for request in requests:
        server.submit([request])
        time.sleep(spacing_s)
    deadline = time.monotonic() + 30
    while len(done) < len(requests) and time.monotonic() < deadline:
        time.sleep(0.005)
    server.stop()
    return server, seen, done


def test_every_request_completes_once_in_batches_of_at_most_max_batch():
    requests = [Request(i, i % 8) for i in range(40)]
    server, seen, done = _serve(requests, max_batch=4, delay_us=0, instances=2)
    assert sorted(done) == list(range(40))
    assert all(shape == (4, 3) for shape in seen)  # always the engine's run batch (padded)
    assert max(int(k) for k in server.stats(1.0)["batch_sizes"]) <= 4
    stats = server.stats(1.0)
    assert sum(int(k) * v for k, v in stats["batch_sizes"].items()) == 40
    assert stats["padded_rows"] == stats["batches"] * 4 - 40


def test_queue_delay_gathers_requests_that_arrive_apart():
    requests = [Request(i, 0) for i in range(8)]
    # 1 ms apart: without a delay most go alone; with 200 ms they fill batches of 4
    eager, _, _ = _serve(requests, max_batch=4, delay_us=0, spacing_s=0.001)
    patient, _, done = _serve(requests, max_batch=4, delay_us=200_000, spacing_s=0.001)
    assert sorted(done) == list(range(8))
    assert patient.stats(1.0)["batch_sizes"] == {"4": 2}
    assert eager.stats(1.0)["batches"] >= patient.stats(1.0)["batches"]


def test_an_engine_error_ends_the_run_and_is_raised():
    def broken(_feeds):
        raise RuntimeError("engine fell over")

    done = []
    server = BatchingServer([broken], _pool(), max_batch=2, run_batch=4, queue_delay_us=0,
                            complete=lambda batch: done.extend(batch))
    server.submit([Request(1, 0)])
    deadline = time.monotonic() + 30
    while not done and time.monotonic() < deadline:
        time.sleep(0.005)
    server.stop()
    assert isinstance(server.error, RuntimeError) and len(done) == 1
    assert server.submit([Request(2, 0)]) is False  # refused once broken; the caller completes it


def test_an_engine_error_inside_a_loadgen_run_ends_it_and_is_raised_after(tmp_path):
    def broken(_feeds):
        raise RuntimeError("engine fell over")

    serving = {"run": ["single_stream"], "min_duration_ms": 50, "min_query_count": 10, "samples_per_query": 2,
               "queue_delay_us": 0, "instances": 1}
    runner = ScenarioRunner([broken], _pool(), run_batch=1, serving=serving, outdir=tmp_path, device_uuid=None,
                            estimate_qps=100)
    with pytest.raises(RuntimeError, match="the single_stream run failed in the engine: engine fell over"):
        runner.run()


def test_search_finds_the_highest_valid_load():
    capacity = 730.0
    runs = search_qps(lambda q: {"target_qps": q, "validity": "VALID" if q <= capacity else "INVALID"}, 400, 12)
    valid = [r["target_qps"] for r in runs if r["validity"] == "VALID"]
    invalid = [r["target_qps"] for r in runs if r["validity"] == "INVALID"]
    assert max(valid) <= capacity < min(invalid)
    assert min(invalid) / max(valid) < 1.05 or len(runs) == 12
    # nothing valid at all: it walks down and reports only invalid runs
    assert all(r["validity"] == "INVALID" for r in search_qps(lambda q: {"target_qps": q, "validity": "INVALID"},
                                                               100, 4))


def test_energy_arithmetic():
    assert integrate([(0.0, 100.0), (1.0, 200.0), (3.0, 200.0)]) == pytest.approx(150 + 400)
    reading = per_inference({"measured": True, "joules": 50.0, "window_s": 2.0, "source": COUNTER}, 1000)
    assert reading["joules_per_inference"] == 0.05 and reading["inferences_per_joule"] == 20.0
    assert reading["mean_power_w"] == 25.0
    assert per_inference(None, 10) == {"measured": False,
                                       "reason": "energy is not measured on CPU workers (no NVML device)"}


def test_loadgen_runs_and_judges(tmp_path):
    """Real LoadGen against a real (numpy) model: SingleStream and Offline
    with their validity, a Server load the executor cannot keep up with INVALID."""
    weights = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)

    def model(feeds):
        time.sleep(0.001)
        return {"y": np.tanh(feeds["x"] @ weights)}

    serving = {"run": ["single_stream", "offline", "server"], "min_duration_ms": 100, "min_query_count": 64,
               "max_query_count": 500, "samples_per_query": 2, "p99_ms": 20.0, "target_qps": [200000],
               "queue_delay_us": 0, "instances": 1}
    runner = ScenarioRunner([model], _pool(), run_batch=1, serving=serving, outdir=tmp_path, device_uuid=None,
                            estimate_qps=500)
    result = runner.run()["scenarios"]
    assert result["single_stream"]["validity"] in ("VALID", "INVALID")
    assert result["single_stream"]["query_count"] >= 64 and result["single_stream"]["p90_ms"] > 1.0
    assert result["offline"]["samples_per_s"] > 0
    server = result["server"]
    assert server["best_valid_qps"] is None and server["runs"][0]["validity"] == "INVALID"
    assert server["runs"][0]["p99_ms"] > 20.0  # 500 queries at once, 1 ms each: the last wait ~0.5 s
    assert result["single_stream"]["energy"]["measured"] is False
    assert "Result is" in runner.summaries["single_stream"]
