from __future__ import annotations

from dataclasses import dataclass

from farm.knobs import knob
from workers.backends.tensorrt_family.config import TensorRTFamilyConfig

HARDWARE_COMPATIBILITY = ("none", "ampere_plus", "same_compute_capability")


@dataclass(frozen=True)
class TensorRTConfig(TensorRTFamilyConfig):
    """TensorRT: the builder times kernels on the GPU, so jobs run on GPU
    workers only and an engine runs on GPUs like the one that built it
    (unless ``hardware_compatibility_level`` widens that). Knobs left
    ``None`` use TensorRT's defaults."""

    name = "tensorrt"
    implementation = "workers.backends.tensorrt.backend:TensorRTBackend"
    distribution = "tensorrt|tensorrt-cu12|tensorrt-cu13"
    requires = ("tensorrt",)
    precisions = ("fp32", "fp16", "bf16", "int8", "fp8", "model")
    device_kinds = ("gpu",)
    build_anywhere = False
    precision_min_compute_capability = {"fp8": "8.9"}  # fp8 kernels exist from Ada (8.9) on
    verified = ("the full-TensorRT runtime has not yet been run on a GPU by the project: its build path is "
                "exercised through TensorRT-RTX on CPU and type-checked against tensorrt-stubs (docs/tensorrt.md)")

    hardware_compatibility_level: str | None = knob(choices=HARDWARE_COMPATIBILITY)
    timing_cache: bool | None = None  # keep a shared timing cache per GPU model and version (default True)
    # BuilderFlag.VERSION_COMPATIBLE: the engine embeds the lean runtime and loads with later TensorRT
    # versions of the same major (farm fetch honours it); the runtime then allows the engine's host code
    # (Runtime.engine_host_code_allowed) for engines built with this knob only. Full TensorRT only:
    # TensorRT-RTX ships no lean runtime (its build fails "Unable to load library: libnvinfer_lean.so.1").
    version_compatible: bool | None = knob()
