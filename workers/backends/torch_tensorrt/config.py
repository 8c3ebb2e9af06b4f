from __future__ import annotations

from dataclasses import dataclass

from farm.backends import BackendConfig, highest_level
from farm.knobs import knob


@dataclass(frozen=True)
class TorchTensorRTConfig(BackendConfig):
    """Torch-TensorRT's ExportedProgram-to-engine path: the user's own
    ``.pt2`` program becomes a TensorRT engine by construction
    (``torch_tensorrt.dynamo.convert_exported_program_to_serialized_trt_engine``),
    with no ONNX round trip. The engine is a plain TensorRT engine: it is
    measured, fetched and served like one built by the ``tensorrt`` backend
    from the converted ONNX, so the two routes compare side by side.
    Knobs left ``None`` use Torch-TensorRT's defaults (TF32 off, as for the
    farm's other TensorRT builds)."""

    name = "torch-tensorrt"
    implementation = "workers.backends.torch_tensorrt.backend:TorchTensorRTBackend"
    distribution = "torch-tensorrt|torch_tensorrt"
    requires = ("torch_tensorrt", "tensorrt", "torch")
    # The engine's kernels are TensorRT's and its graph is torch's lowering: both versions make the result.
    environment_libraries = ("tensorrt|tensorrt-cu12|tensorrt-cu13", "torch")
    # Strongly typed (torch-tensorrt 2.14's engine path takes no precision flags): fp16/bf16 cast the program.
    precisions = ("fp32", "fp16", "bf16")
    device_kinds = ("gpu",)
    native_formats = ("torch.export",)  # it reads the .pt2 only; a model given as ONNX is refused at submit
    artifact_suffix = ".engine"
    multi_stream = True  # the engine runs in the TensorRT-family runner
    verified = ("not run by the project: torch-tensorrt needs full TensorRT, which installs neither on the CI "
                "machine nor on the project's GPU machines; written against torch-tensorrt 2.14's "
                "convert_exported_program_to_serialized_trt_engine, its program preparation tested on the CPU "
                "(docs/formats.md)")

    optimization_level: int | None = knob(minimum=0, maximum=5)  # TensorRT's builder level, default 3
    workspace_mb: int | None = knob(minimum=0)  # default: Torch-TensorRT's (the device's memory)
    max_aux_streams: int | None = knob(minimum=0, maximum=64)
    tf32: bool | None = knob()  # TF32 for fp32 matmul/conv (default False: fp32 stays IEEE fp32)
    use_fp32_acc: bool | None = knob()  # fp16 matmuls accumulate in fp32 (Torch-TensorRT's default False)

    @classmethod
    def refuses_model(cls, model, device_kind, build):
        source = getattr(model, "source", None) or {}
        if source.get("format") not in cls.native_formats:
            given = source.get("format") or "ONNX"
            return (f"torch-tensorrt builds engines from torch.export programs (.pt2), and this model was given "
                    f"as {given}; the tensorrt backend builds from ONNX")
        return None

    @classmethod
    def tuned_build(cls, build: dict) -> dict | None:
        return highest_level(build, "optimization_level")  # TensorRT's builder level, as for tensorrt
