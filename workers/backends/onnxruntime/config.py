from __future__ import annotations

from dataclasses import dataclass

from farm.backends import BackendConfig


@dataclass(frozen=True)
class OnnxRuntimeConfig(BackendConfig):
    """ONNX Runtime on the CPU. Knobs left ``None`` use ONNX Runtime's defaults."""

    name = "onnxruntime"
    implementation = "workers.backends.onnxruntime.backend:OnnxRuntimeBackend"
    distribution = "onnxruntime|onnxruntime-gpu"
    requires = ("onnxruntime",)
    precisions = ("fp32", "int8")
    device_kinds = ("cpu",)

    graph_optimization_level: str | None = None  # disable|basic|extended|all (farm uses "all")
    intra_op_num_threads: int | None = None
    inter_op_num_threads: int | None = None
    execution_mode: str | None = None  # sequential|parallel
    per_channel: bool | None = None  # int8 weights per channel (default True)
