from __future__ import annotations

from dataclasses import dataclass

from farm.backends import BackendConfig
from farm.knobs import knob


@dataclass(frozen=True)
class TorchConfig(BackendConfig):
    """torch.compile with Inductor on the worker's GPU. Knobs left ``None``
    use the farm's defaults, noted per knob."""

    name = "torch"
    implementation = "workers.backends.torch.backend:TorchBackend"
    distribution = "torch"
    requires = ("torch",)
    precisions = ("fp32", "fp16", "bf16")
    device_kinds = ("gpu",)
    native_formats = ("torch.export",)  # a .pt2 is compiled as the user's program, not through its ONNX
    environment_libraries = ("triton",)  # Inductor's kernels come from Triton: a new Triton is a new result
    # Not a model: torch.compiler cache artifacts of this compile (zlib), loaded before compiling the model.
    artifact_suffix = ".torch-cache"
    multi_stream = True  # measure.streams > 1: one model copy and stream each (the runner's multi_stream)

    # torch.compile mode (default "default": no autotuning, seconds per model). "max-autotune" is the
    # tuned build the finals make for their candidates (tuned_build). Every mode compiles without
    # cudagraph trees; the runner captures one CUDA graph in every mode unless measure.cuda_graph is false.
    mode: str | None = knob(choices=("max-autotune", "max-autotune-no-cudagraphs", "reduce-overhead", "default"))
    fullgraph: bool | None = None  # fail instead of graph-breaking (default True: a break hides eager code)
    tf32: bool | None = None  # TF32 matmul/conv for fp32 (default False: fp32 stays IEEE fp32)
    # torch._inductor.config overrides for the compile, e.g. {"max_autotune_conv_backends": "ATEN"}
    # (Triton conv autotuning in fp32 took 130 s for one 1x1 conv on an H200 worker)
    inductor: dict | None = None

    @classmethod
    def tuned_build(cls, build: dict) -> dict | None:
        # Inductor's autotuning of GEMM/conv templates and generated kernels: 200-350 s a real model
        # on an H100/H200 where "default" took 8-35 s, for a few percent (-7 % kernel time, yolov8n fp16 b8).
        if (build or {}).get("mode") in ("max-autotune", "max-autotune-no-cudagraphs"):
            return None
        return {**(build or {}), "mode": "max-autotune"}
