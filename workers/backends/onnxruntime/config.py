from __future__ import annotations

from dataclasses import dataclass

from farm.backends import BackendConfig
from farm.knobs import knob


@dataclass(frozen=True)
class OnnxRuntimeConfig(BackendConfig):
    """ONNX Runtime on the CPU. Knobs left ``None`` use ONNX Runtime's defaults."""

    name = "onnxruntime"
    implementation = "workers.backends.onnxruntime.backend:OnnxRuntimeBackend"
    distribution = "onnxruntime|onnxruntime-gpu"
    requires = ("onnxruntime",)
    precisions = ("fp32", "int8", "model")  # model: the model's own types, run as given (pre-quantized models)
    device_kinds = ("cpu",)
    artifact_suffix = ".onnx"  # the optimised (or quantized) ONNX model

    @classmethod
    def refuses_model(cls, model, device_kind, build):
        if device_kind == "cpu" and model.bf16_compute:
            return (f"ONNX Runtime's CPU provider has no bfloat16 kernel for {model.bf16_compute}; cast the "
                    f"input to float32 in the model, or use a GPU backend")
        return super().refuses_model(model, device_kind, build)

    # the farm's default is "all"
    graph_optimization_level: str | None = knob(choices=("disable", "basic", "extended", "all"))
    intra_op_num_threads: int | None = knob(minimum=0, maximum=4096)  # 0: ONNX Runtime picks
    inter_op_num_threads: int | None = knob(minimum=0, maximum=4096)
    execution_mode: str | None = knob(choices=("sequential", "parallel"))
    per_channel: bool | None = None  # int8 weights per channel (default True)
    # int8 recipe (workers/precision/recipes.py): "onnxruntime" (default: its own U8S8 static recipe, all
    # ops) or "tensorrt" (Q/DQ at Conv/MatMul/Gemm, symmetric int8: what a TensorRT engine would get)
    quantization: str | None = knob(choices=("onnxruntime", "tensorrt"))
    quant_format: str | None = knob(choices=("qdq", "qoperator"))  # onnxruntime recipe only (default qdq)
