"""One timing protocol for every backend and lane count (no GPU needed).

The default ``measure.sync`` of each backend is the one docs/fields.md
("Timing protocol") documents; the GPU side of the same rule (one lane and
N lanes record the same fields, torch's default) is in test_gpu_timing.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from farm.spec import MeasureConfig
from workers.timing.cuda import DEFAULT_SYNC, resolve_settings
from workers.timing.host_bound import summarize

DOCS = Path(__file__).resolve().parents[2] / "docs" / "fields.md"


def documented_sync() -> dict[str, str]:
    """backend -> the default sync mode the docs' table names."""
    text = DOCS.read_text()
    table = text[text.index("Default `measure.sync` per backend"):]
    rows = re.findall(r"^\| `([\w-]+)` \| [^|]+ \| `(\w+)`", table, re.MULTILINE)
    return dict(rows)


def test_the_docs_name_a_default_for_every_backend():
    from farm.backends import backend_names

    assert set(documented_sync()) >= set(backend_names())


@pytest.mark.parametrize("backend", ["tensorrt", "tensorrt-rtx", "torch-tensorrt"])
def test_tensorrt_family_default_sync_is_the_documented_one(backend):
    """trtexec 11's defaults, then the harness: what a TensorRT-family job is timed with."""
    from workers.backends.tensorrt_family.measure_settings import trtexec_defaults

    for capture, reason in ((True, None), (False, "an output allocator")):
        timed, notes = trtexec_defaults(MeasureConfig(), capture, reason)
        assert resolve_settings(timed)["sync"] == documented_sync()[backend]
        assert "sync" in notes["defaulted"]
    timed, _ = trtexec_defaults(MeasureConfig(sync="blocking"), True, None)
    assert resolve_settings(timed)["sync"] == "blocking"  # the spec's value wins


def test_torch_and_the_harness_default_sync_is_the_documented_one():
    """torch hands the job's MeasureConfig to the harness unchanged (its
    real run is checked in test_gpu_timing.py); the harness's default is
    the documented one for any lane count."""
    assert DEFAULT_SYNC == documented_sync()["torch"]
    for streams in (1, 2, 4):
        assert resolve_settings(MeasureConfig(streams=streams))["sync"] == DEFAULT_SYNC


def test_onnxruntime_records_the_documented_sync(tiny_cnn, tmp_path):
    """A real ONNX Runtime build, load and measurement on this CPU."""
    from farm.model_info import read_model
    from workers.backends import load_backend
    from workers.backends.base import DeviceContext, JobContext
    from workers.inputs import make_feeds

    model = read_model(tiny_cnn)
    name = model.inputs[0].name
    shapes = {name: {"min": [1, 3, 32, 32], "opt": [1, 3, 32, 32], "max": [1, 3, 32, 32]}}
    measure = MeasureConfig(warmup_ms=0, duration_ms=10, iterations=3)
    ctx = JobContext(job_id="sync", precision="fp32", batch_size=1, shapes=shapes, model_path=tiny_cnn, model=model,
                     measure=measure, calibration={}, device=DeviceContext(kind="cpu", name="cpu",
                                                                            device_class="cpu.test"),
                     workdir=tmp_path, store=None)
    backend = load_backend("onnxruntime", None)
    runner = backend.load(backend.build(ctx).artifact, ctx)
    try:
        timing = runner.measure(make_feeds(ctx.model, ctx.run_shapes), measure)
    finally:
        runner.close()
    assert len(timing.samples_ms) >= 3 and np.isfinite(timing.samples_ms).all()
    assert timing.settings["sync"] == documented_sync()["onnxruntime"]


def test_host_bound_counts_every_lane_the_host_queues():
    """One host thread queues N lanes: each lane waits N enqueue calls between its launches."""
    one = summarize([1.0] * 100, [0.3] * 100, wall_ms=101.0)
    two = summarize([1.0] * 200, [0.3] * 200, wall_ms=101.0, lanes=2)
    assert one["host_share"] == pytest.approx(0.3) and not one["host_bound"]
    assert two["host_share"] == pytest.approx(0.6) and two["host_bound"] and two["lanes"] == 2
    # Two lanes busy side by side for the whole run are not idle.
    assert two["gpu_busy_share"] == pytest.approx(200 / 202, abs=1e-3)
    assert summarize([1.0] * 100, [0.3] * 100, wall_ms=101.0, lanes=1) == one
