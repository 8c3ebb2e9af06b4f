"""The CUDA-event harness's configuration handling (no GPU needed)."""

from __future__ import annotations

import importlib.util

import pytest

from farm.spec import MeasureConfig
from workers.timing.cuda import QUEUE_DEPTH, format_uuid, resolve_settings


def test_defaults_follow_trtexec():
    settings = resolve_settings(MeasureConfig())
    assert settings["warmup_ms"] == 200 and settings["duration_ms"] == 3000 and settings["iterations"] == 10
    # trtexec 11's defaults, the farm's one default for every GPU backend: a CUDA graph, spin-wait.
    assert settings["sync"] == "spin"
    assert settings["cuda_graph"] is True and settings["l2_flush"] is False and settings["end_to_end"] is False
    assert resolve_settings(MeasureConfig(cuda_graph=False, sync="blocking"))["cuda_graph"] is False
    assert settings["queue_depth"] == QUEUE_DEPTH


def test_end_to_end_defaults_on_when_the_backend_gives_copies():
    assert resolve_settings(MeasureConfig(), has_copies=True)["end_to_end"] is True
    assert resolve_settings(MeasureConfig(end_to_end=False), has_copies=True)["end_to_end"] is False


def test_end_to_end_without_copies_is_refused():
    with pytest.raises(ValueError, match="inputs_h2d and outputs_d2h"):
        resolve_settings(MeasureConfig(end_to_end=True))


def test_backend_graph_choice_overrides_config():
    assert resolve_settings(MeasureConfig(cuda_graph=True))["cuda_graph"] is True
    # torch graphs its work itself: the harness must not capture on top.
    assert resolve_settings(MeasureConfig(cuda_graph=True), capture_graph=False)["cuda_graph"] is False


def test_sync_and_flush_settings():
    settings = resolve_settings(MeasureConfig(sync="spin", l2_flush=True))
    assert settings["sync"] == "spin" and settings["l2_flush"] is True
    with pytest.raises(ValueError, match="blocking, spin"):
        resolve_settings(MeasureConfig(sync="yield"))


def test_uuid_matches_nvml_spelling():
    raw = bytes(range(16))
    assert format_uuid(raw) == "GPU-00010203-0405-0607-0809-0a0b0c0d0e0f"


def _gpu_present() -> bool:
    from tests.conftest import _gpu_present as probe

    return probe()


@pytest.mark.skipif(_gpu_present(), reason="checks the error on a machine without a GPU")
def test_without_gpu_the_error_is_clear():
    from workers.timing.cuda import measure_enqueue
    from workers.timing.cuda_runtime import CudaError

    expected = "cudaSetDevice" if importlib.util.find_spec("cuda") else "needs cuda-python"
    with pytest.raises(CudaError, match=expected):
        measure_enqueue(lambda stream: None, MeasureConfig(), batch_size=1)
