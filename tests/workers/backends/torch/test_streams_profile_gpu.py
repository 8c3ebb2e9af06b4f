"""torch multi-stream throughput and the kernel table on a real GPU."""

from __future__ import annotations

import dataclasses

import pytest

from farm.spec import MeasureConfig

pytestmark = pytest.mark.gpu
QUICK = MeasureConfig(warmup_ms=20, duration_ms=300, iterations=20, cuda_graph=True)


def test_two_streams_each_replay_their_own_graph_and_report_aggregate_throughput(tiny_cnn, tmp_path):
    pytest.importorskip("onnx2torch")
    from tests.workers.test_gpu_timing import _torch_job
    from workers.backends import load_backend
    from workers.inputs import make_feeds

    ctx = _torch_job(tiny_cnn, tmp_path, QUICK)
    backend = load_backend("torch", {"mode": "default"})
    runner = backend.load(backend.build(ctx).artifact, ctx)
    try:
        feeds = make_feeds(ctx.model, ctx.run_shapes)
        one = runner.measure(feeds, QUICK)
        two = runner.measure(feeds, dataclasses.replace(QUICK, streams=2))
        # One harness over N lanes (workers/timing/cuda.py): one lane records the same fields, its
        # throughput is batch / latency as for any backend.
        assert one.throughput is None and one.settings["streams"] == 1 and len(one.settings["per_stream"]) == 1
        settings = two.settings
        assert settings["streams"] == 2 and settings["cuda_graph_by"] == "one torch.cuda.CUDAGraph per stream"
        assert [s["iterations"] >= 20 for s in settings["per_stream"]] == [True, True]
        iterations = sum(s["iterations"] for s in settings["per_stream"])
        assert len(two.samples_ms) == iterations
        assert two.throughput == pytest.approx(iterations * 2 * 1000.0 / settings["aggregate_wall_ms"])
        table = runner.profile_layers(feeds, QUICK)
        assert table["source"].startswith("torch.profiler") and table["iterations"] == 20
        assert table["layers"] and all(r["median_ms"] > 0 for r in table["layers"])
        assert sum(r["share"] for r in table["layers"]) == pytest.approx(1.0)
        assert any(r["type"] == "kernel" for r in table["layers"])
    finally:
        runner.close()
