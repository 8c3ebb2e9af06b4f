"""Compute-capability limits live on the backend's capabilities object, so
submit, routing and workers decide them alike (farm/capabilities.py)."""

from __future__ import annotations

from types import SimpleNamespace as Plan

import pytest

from farm.backends import backend_config
from farm.capabilities import BUILD, RUN
from farm.devices import class_compute_capability
from farm.planner import compatible
from farm.routing import route


def plan(backend: str, precision: str, device_class: str):
    return Plan(backend=backend, precision=precision, device_class=device_class, build=None)


@pytest.mark.parametrize("device_class, cc", [("gpu.nvidia-h100-80gb-hbm3", "9.0"), ("gpu.nvidia-h200", "9.0"),
                                              ("gpu.nvidia-l4", "8.9"), ("gpu.nvidia-a10", "8.6"),
                                              ("gpu.nvidia-a100-sxm4-40gb", "8.0"), ("gpu.tesla-t4", "7.5"),
                                              ("gpu.nvidia-geforce-rtx-5090", "12.0"), ("gpu.mystery", None),
                                              ("cpu.x86_64.amd-epyc", None)])
def test_a_class_name_implies_its_compute_capability(device_class, cc):
    assert class_compute_capability(device_class) == cc


def test_rtx_refuses_a_class_it_cannot_target_and_says_what_it_can():
    caps = backend_config("tensorrt-rtx").capabilities()
    support = caps.supports(plan("tensorrt-rtx", "fp16", "gpu.nvidia-h100-80gb-hbm3"))
    assert not support.ok
    assert support.reason == ("tensorrt-rtx cannot target gpu.nvidia-h100-80gb-hbm3 (compute capability 9.0); it "
                              "targets compute capabilities 7.5, 8.0, 8.6, 8.9, 12.x")
    for target in ("gpu.nvidia-l4", "gpu.nvidia-a10", "gpu.tesla-t4", "gpu.nvidia-geforce-rtx-5090", "gpu.mystery"):
        assert caps.supports(plan("tensorrt-rtx", "fp16", target)).phase == BUILD  # builds anywhere, then runs there


def test_a_worker_device_reports_its_own_compute_capability():
    caps = backend_config("tensorrt-rtx").capabilities()
    # An unknown class name: the device's own capability decides on the worker.
    device = Plan(kind="gpu", device_class="gpu.mystery", compute_capability="9.0")
    support = caps.supports(plan("tensorrt-rtx", "fp16", "gpu.mystery"), device)
    assert not support.ok and "compute capability 9.0" in support.reason
    assert caps.supports(plan("tensorrt-rtx", "fp16", "gpu.mystery"),
                         Plan(kind="gpu", device_class="gpu.mystery", compute_capability="8.9")).phase == RUN


@pytest.mark.parametrize("backend", ["tensorrt", "tensorrt-rtx"])
def test_fp8_needs_compute_capability_8_9(backend):
    caps = backend_config(backend).capabilities()
    refused = caps.supports(plan(backend, "fp8", "gpu.nvidia-a100-sxm4-40gb" if backend == "tensorrt"
                                 else "gpu.nvidia-a10"))
    assert not refused.ok and "fp8 needs compute capability 8.9 or newer" in refused.reason
    assert caps.supports(plan(backend, "fp8", "gpu.nvidia-l4")).ok
    assert caps.supports(plan(backend, "fp16", "gpu.nvidia-a10")).ok


def test_submit_drops_the_impossible_pair_with_the_reason_and_keeps_the_rest():
    plans = [Plan(backend="tensorrt-rtx", precision="fp16", device_class="gpu.nvidia-h100-80gb-hbm3"),
             Plan(backend="tensorrt-rtx", precision="fp16", device_class="gpu.nvidia-l4"),
             Plan(backend="torch", precision="fp16", device_class="gpu.nvidia-h100-80gb-hbm3")]
    kept, skipped = compatible(plans)
    assert [(p.backend, p.device_class) for p in kept] == [("tensorrt-rtx", "gpu.nvidia-l4"),
                                                          ("torch", "gpu.nvidia-h100-80gb-hbm3")]
    assert skipped == ["tensorrt-rtx on gpu.nvidia-h100-80gb-hbm3 (tensorrt-rtx cannot target "
                       "gpu.nvidia-h100-80gb-hbm3 (compute capability 9.0); it targets compute capabilities 7.5, "
                       "8.0, 8.6, 8.9, 12.x)"]


def test_the_phase_is_decided_once_by_routing():
    rtx = plan("tensorrt-rtx", "fp16", "gpu.nvidia-l4")
    assert route(rtx).phase == BUILD and route(rtx).queue == "build.tensorrt-rtx"
    assert route(plan("onnxruntime", "fp32", "cpu.x86_64.amd-epyc")).phase == RUN
