"""ONNX Runtime (the real backend) with a *tuned build*: its fast build is
graph optimisation level ``basic``, its tuned one ``all``. It stands in, on
a CPU, for the GPU backends whose tuned builds (torch max-autotune,
TensorRT optimization level 5) need a GPU, so the finals' tuned rebuilds
(farm/tuned.py) run end to end in CI. Registered as
FARM_EXTRA_BACKENDS="ort-tuned=tests.integration.plugins.ort_tuned:OrtTunedConfig"."""

from __future__ import annotations

from dataclasses import dataclass

from workers.backends.onnxruntime.config import OnnxRuntimeConfig


@dataclass(frozen=True)
class OrtTunedConfig(OnnxRuntimeConfig):
    name = "ort-tuned"

    @classmethod
    def tuned_build(cls, build: dict) -> dict | None:
        if (build or {}).get("graph_optimization_level", "all") == "all":
            return None
        return {**(build or {}), "graph_optimization_level": "all"}
