"""What a TensorRT-family library can do, as data (light: no imports).

A flavor names the module to import and the features its builder has.
TensorRT-RTX builds ahead of time for a list of compute capabilities
without a GPU (its kernels are compiled at load time); full TensorRT tunes
on the GPU it builds on, so a build is tied to that GPU unless a hardware
compatibility level says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Flavor:
    name: str  # backend and library name recorded in metadata
    modules: tuple[str, ...]  # import candidates, first found wins
    timing_cache: bool  # IBuilderConfig timing cache worth keeping across builds
    hardware_compatibility: bool  # hardware_compatibility_level knob
    compute_capability_targets: bool  # set_compute_capability / num_compute_capabilities
    runtime_compute_capabilities: tuple[str, ...] = ()  # where its runtime runs; () = any the library takes
    version_match: str = "exact"  # engines load with the same version ("exact") or "major.minor"
    bf16_fp32_ops: tuple[str, ...] = ()  # ONNX ops kept fp32 in bf16 models (no bf16 kernels)
    # IRuntimeConfig with a runtime cache, kernel specialisation and CUDA-graph strategies (RTX)
    runtime_config: bool = False


TENSORRT = Flavor(
    name="tensorrt",
    modules=("tensorrt",),
    timing_cache=True,
    hardware_compatibility=True,
    compute_capability_targets=False,
)

# Targets TensorRT-RTX 1.x accepts (ComputeCapability.SM*) and the ones its
# runtime executes on; building without a target list builds the latter.
RTX_TARGETS = {"7.5": "SM75", "8.0": "SM80", "8.6": "SM86", "8.9": "SM89", "12.0": "SM120", "12.1": "SM121"}
# TensorRT-RTX 1.7's support matrix lists 7.5 too, but its 1.7.1 runtime refused the H200 with
# "Supported compute capabilities: 8.0 8.6 8.9 12.0 12.1 >12.0" (seen 2026-11-22), so 7.5 stays a
# build target only until a 7.5 GPU has loaded an engine.
RTX_RUNTIME = ("8.0", "8.6", "8.9", "12.0", "12.1")
# fp8 kernels exist from Ada (8.9) on; Ampere targets refuse fp8 models.
RTX_FP8 = ("8.9", "12.0", "12.1")

TENSORRT_RTX = Flavor(
    name="tensorrt-rtx",
    modules=("tensorrt_rtx", "tensorrt_rtx_bindings"),
    timing_cache=False,
    hardware_compatibility=False,
    compute_capability_targets=True,
    runtime_compute_capabilities=RTX_RUNTIME,
    version_match="major.minor",
    # Its deconvolution has no bf16 kernel ("Could not infer output types
    # for operation: deconv" on PP-OCR's detector).
    bf16_fp32_ops=("ConvTranspose",),
    runtime_config=True,
)
