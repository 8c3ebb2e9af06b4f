"""The CUDA-event harness, NVML telemetry and the torch backend on a real GPU."""

from __future__ import annotations

import numpy as np
import pytest

from farm.spec import MeasureConfig

pytestmark = pytest.mark.gpu
QUICK = dict(warmup_ms=20, duration_ms=200, iterations=20)
NBYTES = 64 << 20


@pytest.fixture
def buffers():
    from workers.timing.cuda_runtime import check, runtime

    rt = runtime()
    check(rt.cudaSetDevice(0), "cudaSetDevice")
    device = check(rt.cudaMalloc(NBYTES), "cudaMalloc")
    host = check(rt.cudaMallocHost(NBYTES), "cudaMallocHost")
    yield rt, device, host
    check(rt.cudaFree(device), "cudaFree")
    check(rt.cudaFreeHost(host), "cudaFreeHost")


def _memset(rt, pointer):
    from workers.timing.cuda_runtime import check

    return lambda stream: check(rt.cudaMemsetAsync(pointer, 1, NBYTES, stream), "memset")


def test_events_time_gpu_work_with_telemetry(buffers):
    from workers.timing.cuda import measure_enqueue

    rt, device, _host = buffers
    result = measure_enqueue(_memset(rt, device), MeasureConfig(**QUICK), batch_size=1)
    assert len(result.samples_ms) >= 20 and min(result.samples_ms) > 0
    # The farm's default: a CUDA graph and spin-wait where the spec says nothing.
    assert result.settings["cuda_graph"] is True and result.settings["sync"] == "spin"
    assert result.settings["device_uuid"].startswith("GPU-")
    assert result.telemetry["available"] and result.telemetry["samples"] >= 2
    assert result.telemetry["sm_clock_mhz"]["max"] > 0
    # memory_mb itself is the executor's (used after warm-up less before load); the harness reports its parts
    assert result.settings["device_used_mb"] > 0 and result.settings["harness_device_mb"] >= 0


def test_graph_end_to_end_flush_and_spin(buffers):
    from workers.timing.cuda import measure_enqueue
    from workers.timing.cuda_runtime import check

    rt, device, host = buffers
    kind = rt.cudaMemcpyKind

    def h2d(stream):
        check(rt.cudaMemcpyAsync(device, host, NBYTES, kind.cudaMemcpyHostToDevice, stream), "h2d")

    def d2h(stream):
        check(rt.cudaMemcpyAsync(host, device, NBYTES, kind.cudaMemcpyDeviceToHost, stream), "d2h")

    config = MeasureConfig(cuda_graph=True, l2_flush=True, sync="spin", **QUICK)
    result = measure_enqueue(_memset(rt, device), config, batch_size=1, inputs_h2d=h2d, outputs_d2h=d2h)
    settings = result.settings
    assert settings["cuda_graph"] and settings["end_to_end"] and settings["sync"] == "spin"
    assert settings["l2_flush_bytes"] > 0
    assert len(result.e2e_samples_ms) == len(result.samples_ms)
    # Two 64 MiB PCIe copies take far longer than one on-device memset.
    assert np.median(result.e2e_samples_ms) > 2 * np.median(result.samples_ms)


def _torch_job(tiny_cnn, tmp_path, measure: MeasureConfig):
    from farm.model_info import read_model
    from workers.backends.base import DeviceContext, JobContext

    shapes = {"images": {"min": [2, 3, 32, 32], "opt": [2, 3, 32, 32], "max": [2, 3, 32, 32]}}
    return JobContext(job_id="t", precision="fp16", batch_size=2, shapes=shapes, model_path=tiny_cnn,
                      model=read_model(tiny_cnn), measure=measure, calibration={},
                      device=DeviceContext(kind="gpu", name="gpu", device_class="gpu.test", index=0),
                      workdir=tmp_path, store=None)


def test_torch_backend_builds_loads_and_measures(tiny_cnn, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx2torch")
    from farm.backends import backend_config
    from workers.backends import load_backend
    from workers.inputs import make_feeds

    ctx = _torch_job(tiny_cnn, tmp_path, MeasureConfig(**QUICK))
    backend = load_backend("torch", {"mode": "max-autotune-no-cudagraphs"})
    assert backend_config("torch").name == "torch"
    built = backend.build(ctx)
    assert built.artifact.stat().st_size > 0 and built.info["source_format"] == "onnx"
    runner = backend.load(built.artifact, ctx)
    try:
        feeds = make_feeds(ctx.model, ctx.run_shapes)
        out = runner.infer(feeds)["logits"]
        assert out.shape == (2, 10) and np.isfinite(out).all()
        timing = runner.measure(feeds, ctx.measure)
        assert len(timing.samples_ms) >= 20 and timing.e2e_samples_ms
        assert timing.settings["compile_mode"] == "max-autotune-no-cudagraphs"
        # Graphs are independent of the compile mode: captured unless the spec turns them off.
        assert timing.settings["cuda_graph"] is True and not timing.settings["cuda_graph_error"]
    finally:
        runner.close()


def test_torch_graph_replay_reads_new_inputs_and_matches_direct_calls(tiny_cnn, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx2torch")
    from workers.backends import load_backend
    from workers.inputs import make_feeds

    # No build knobs and no measure.cuda_graph: the farm's defaults (fast compile, a CUDA graph).
    ctx = _torch_job(tiny_cnn, tmp_path, MeasureConfig(**QUICK))
    backend = load_backend("torch", None)
    runner = backend.load(backend.build(ctx).artifact, ctx)
    try:
        assert runner.notes["compile_mode"] == "default"
        assert runner.call.graph is not None, runner.call.graph_error
        first, second = make_feeds(ctx.model, ctx.run_shapes, seed=1), make_feeds(ctx.model, ctx.run_shapes, seed=2)
        replayed = [runner.infer(f)["logits"] for f in (first, second)]
        assert not np.allclose(replayed[0], replayed[1])  # the replay read the new inputs
        for feeds, got in zip((first, second), replayed):
            tensors = [torch.from_numpy(feeds["images"]).cuda().half()]
            with torch.no_grad():
                direct = runner.call.compiled(*tensors)
            np.testing.assert_allclose(got, direct.float().cpu().numpy(), rtol=1e-3, atol=1e-3)
        timing = runner.measure(first, ctx.measure)
        assert timing.settings["cuda_graph"] is True and timing.settings["cuda_graph_error"] is None
        assert len(timing.samples_ms) >= 20 and len(timing.e2e_samples_ms) == len(timing.samples_ms)
    finally:
        runner.close()


def test_torch_jobs_in_one_worker_do_not_accumulate_gpu_memory(tiny_cnn, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx2torch")
    from workers.backends import load_backend
    from workers.inputs import make_feeds

    ctx = _torch_job(tiny_cnn, tmp_path, MeasureConfig(cuda_graph=True, **QUICK))
    backend = load_backend("torch", {"mode": "default"})
    artifact = backend.build(ctx).artifact
    after_close, footprints = [], []
    for _ in range(3):  # a worker loads, measures and closes job after job
        runner = backend.load(artifact, ctx)
        timing = runner.measure(make_feeds(ctx.model, ctx.run_shapes), ctx.measure)
        footprints.append(timing.settings["torch_peak_allocated_mb"])
        runner.close()
        after_close.append(torch.cuda.memory_allocated() / 2**20)
    assert abs(after_close[2] - after_close[1]) < 1.0, after_close
    assert 0 < footprints[2] < 1.5 * footprints[0] + 1.0, footprints


def test_host_bound_callable_is_flagged_and_graph_replay_is_not(buffers):
    import time

    from workers.timing.cuda import measure_enqueue

    rt, device, _host = buffers
    memset = _memset(rt, device)

    def host_bound(stream):  # host work per launch far above the GPU's (a memset of 64 MiB, ~20 us)
        memset(stream)
        time.sleep(0.002)

    def heavy(stream):  # ~0.3 ms of GPU work per launch, one graph
        for _ in range(16):
            memset(stream)

    # No graph: the sleep must run on every launch (a graph would replay only the memset).
    flagged = measure_enqueue(host_bound, MeasureConfig(cuda_graph=False, **QUICK), telemetry=False)
    assert "host_bound" in flagged.flags, flagged.settings["host_bound"]
    assert flagged.settings["host_bound"]["host_share"] > 0.5
    replay = measure_enqueue(heavy, MeasureConfig(cuda_graph=True, **QUICK), telemetry=False)
    assert "host_bound" not in replay.flags, replay.settings["host_bound"]
    shares = replay.settings["host_bound"]
    assert shares["host_share"] < 0.5 and shares["gpu_busy_share"] > 0.5


# The protocol every lane count shares (workers.timing.cuda): the fields a measurement records.
PROTOCOL_FIELDS = {"clock", "cuda_graph", "end_to_end", "l2_flush", "sync", "queue_depth", "warmup_ms", "duration_ms",
                   "iterations", "device_flags", "streams", "aggregate_throughput", "aggregate_wall_ms", "per_stream",
                   "stream", "warmup_iterations", "measured_iterations", "measured_wall_ms", "batch_size",
                   "device_uuid", "device_name", "l2_flush_bytes", "fallbacks", "device_used_mb", "harness_device_mb",
                   "host_bound"}


def test_one_lane_and_single_stream_record_the_same_protocol(buffers):
    """Single-stream timing is one lane of the harness: flush, telemetry,
    host-bound, sync mode and end-to-end figures are recorded alike for one
    lane and for two."""
    from workers.timing.cuda import Lane, measure_enqueue, measure_lanes
    from workers.timing.cuda_runtime import check

    rt, device, host = buffers
    second = check(rt.cudaMalloc(NBYTES), "cudaMalloc")
    kind = rt.cudaMemcpyKind
    size = 1 << 20

    def copies(pointer):
        return (lambda s: check(rt.cudaMemcpyAsync(pointer, host, size, kind.cudaMemcpyHostToDevice, s), "h2d"),
                lambda s: check(rt.cudaMemcpyAsync(host, pointer, size, kind.cudaMemcpyDeviceToHost, s), "d2h"))

    config = MeasureConfig(l2_flush=True, **QUICK)
    try:
        single = measure_enqueue(_memset(rt, device), config, batch_size=1, inputs_h2d=copies(device)[0],
                                 outputs_d2h=copies(device)[1])
        one = measure_lanes([Lane(_memset(rt, device), None, *copies(device))], config, batch_size=1)
        two = measure_lanes([Lane(_memset(rt, device), None, *copies(device)),
                             Lane(_memset(rt, second), None, *copies(second))], config, batch_size=1)
    finally:
        check(rt.cudaFree(second), "cudaFree")
    for result, lanes in ((single, 1), (one, 1), (two, 2)):
        settings = result.settings
        assert PROTOCOL_FIELDS <= set(settings), PROTOCOL_FIELDS - set(settings)
        assert settings["streams"] == lanes and len(settings["per_stream"]) == lanes
        assert settings["sync"] == "spin" and settings["cuda_graph"] is True and settings["end_to_end"] is True
        assert settings["l2_flush"] is True and settings["l2_flush_bytes"] > 0
        assert settings["host_bound"]["lanes"] == lanes and "host_share" in settings["host_bound"]
        assert result.telemetry["available"] and result.telemetry["samples"] >= 1
        assert len(result.e2e_samples_ms) == len(result.samples_ms) >= 20 * lanes
    assert set(single.settings) == set(one.settings) == set(two.settings)
    assert single.throughput is None and one.throughput is None  # one lane: batch / latency, as any backend
    assert two.throughput == two.settings["aggregate_throughput"] > 0


def test_torch_times_one_stream_and_two_alike_with_the_default_sync(tiny_cnn, tmp_path):
    """The torch backend's default sync is the documented one (spin, docs/fields.md) for every lane count."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx2torch")
    from workers.backends import load_backend
    from workers.inputs import make_feeds
    from workers.timing.cuda import DEFAULT_SYNC

    ctx = _torch_job(tiny_cnn, tmp_path, MeasureConfig(**QUICK))
    backend = load_backend("torch", None)
    runner = backend.load(backend.build(ctx).artifact, ctx)
    try:
        feeds = make_feeds(ctx.model, ctx.run_shapes)
        one = runner.measure(feeds, MeasureConfig(**QUICK))
        two = runner.measure(feeds, MeasureConfig(streams=2, **QUICK))
    finally:
        runner.close()
    assert DEFAULT_SYNC == "spin"
    for result, lanes in ((one, 1), (two, 2)):
        assert result.settings["sync"] == DEFAULT_SYNC and result.settings["streams"] == lanes
        assert PROTOCOL_FIELDS <= set(result.settings) and result.settings["cuda_graph"] is True
        assert len(result.e2e_samples_ms) == len(result.samples_ms) and "host_share" in result.settings["host_bound"]
    assert set(one.settings) == set(two.settings)
