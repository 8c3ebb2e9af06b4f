from __future__ import annotations

from dataclasses import dataclass

from farm.knobs import knob
from workers.backends.tensorrt_family.capabilities import RTX_FP8, RTX_RUNTIME, RTX_TARGETS
from workers.backends.tensorrt_family.config import TensorRTFamilyConfig


@dataclass(frozen=True)
class TensorRTRTXConfig(TensorRTFamilyConfig):
    """TensorRT-RTX. Its builder needs no GPU, so jobs also run on CPU
    workers (``device_kinds`` includes "cpu"): there a job builds the
    engine, stores it with its metadata, and ends ``unsupported`` because
    measurement needs a GPU of compute capability 8.0, 8.6, 8.9 or 12.x.
    That is how CI exercises real RTX builds on CPU-only machines; on a
    supported GPU the same job is built, checked and measured.
    Knobs left ``None`` use TensorRT-RTX's defaults."""

    name = "tensorrt-rtx"
    implementation = "workers.backends.tensorrt_rtx.backend:TensorRTRTXBackend"
    distribution = "tensorrt-rtx-cu13-bindings|tensorrt-rtx|tensorrt_rtx"
    requires = ("tensorrt_rtx|tensorrt_rtx_bindings",)
    precisions = ("fp32", "fp16", "bf16", "int8", "fp8", "model")
    device_kinds = ("gpu", "cpu")
    build_anywhere = True
    # What its engines can target (RTX_TARGETS): an H100/H200 class (9.0) is refused at submit.
    target_compute_capabilities = ("7.5", "8.0", "8.6", "8.9", "12.x")
    precision_min_compute_capability = {"fp8": "8.9"}  # RTX_FP8: Ampere targets refuse fp8 models
    verified = ("builds run in CI on CPU; its runtime refuses compute capability 9.0, so the project has not "
                "measured an engine with it yet (docs/tensorrt.md)")

    # Targets like ["8.6", "8.9", "12.0"] or ["current"] (the build GPU);
    # default: every capability the runtime supports (8.0, 8.6, 8.9, 12.0,
    # 12.1), for fp8 those with fp8 kernels (8.9, 12.0, 12.1).
    compute_capabilities: tuple[str | float, ...] | list[str | float] | None = knob(
        choices=(*RTX_TARGETS, "current"), normalize=lambda target: str(target).lower())

    # BuilderFlag.REQUIRE_USER_ALLOCATION (default True in the farm): engines use memory the
    # application provides where possible, which RTX requires for CUDA stream capture; the runtime
    # still asks is_stream_capturable() before capturing (docs/tensorrt.md).
    require_user_allocation: bool | None = knob()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.compute_capabilities is not None:  # checked by farm.knobs; stored as the choices spell them
            object.__setattr__(self, "compute_capabilities", tuple(str(t).lower() for t in self.compute_capabilities))

    def targets(self, precision: str | None = None) -> tuple[str, ...]:
        if self.compute_capabilities:
            return tuple(str(t) for t in self.compute_capabilities)  # already normalised by __post_init__
        return RTX_FP8 if precision == "fp8" else RTX_RUNTIME
