"""Whether a backend measures several streams is on its capabilities object,
so submit refuses `streams: 2` for a one-stream backend (the planner's
unsupported row, never built or measured) instead of the worker after a build."""

from __future__ import annotations

from types import SimpleNamespace as Plan

import pytest

from farm.backends import backend_config
from farm.planner import unsupported


def plan(backend: str, device_class: str, streams: int):
    return Plan(backend=backend, precision="fp32", device_class=device_class, build=None,
                config={"measure": {"streams": streams}})


def test_a_one_stream_backend_refuses_two_streams_at_submit_with_one_line():
    assert unsupported(plan("onnxruntime", "cpu.x86_64.amd-epyc", 2)) == (
        "measure.streams is 2, but the onnxruntime runner measures one stream only")
    assert unsupported(plan("onnxruntime", "cpu.x86_64.amd-epyc", 1)) is None


@pytest.mark.parametrize("backend", ["tensorrt", "torch"])
def test_multi_stream_backends_take_several_streams(backend):
    assert backend_config(backend).capabilities().multi_stream
    assert unsupported(plan(backend, "gpu.nvidia-l4", 4)) is None


def test_a_job_row_without_a_measure_block_is_one_stream():
    assert backend_config("onnxruntime").capabilities().supports(
        Plan(backend="onnxruntime", precision="fp32", device_class="cpu.x86_64.amd-epyc", build=None)).ok
