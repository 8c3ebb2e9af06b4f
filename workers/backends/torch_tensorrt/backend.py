"""Build: the job's ``.pt2`` (cast to the job's precision) -> Torch-TensorRT's
``convert_exported_program_to_serialized_trt_engine`` -> a serialized
TensorRT engine with the job's optimization profile, its bindings named as
the converted ONNX model's. Load and measure: the TensorRT-family runner,
as for any TensorRT engine (the same timing protocol, the same fetch).

Written against torch-tensorrt 2.14 (TensorRT 11, strongly typed); the
keyword arguments are passed only where the installed version takes them.
Not yet run by the project (config.verified says why).
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any, cast

from farm.errors import BackendUnsupported
from workers.backends.base import Backend, BuildResult, JobContext, Runner
from workers.backends.tensorrt_family.backend import ENGINE_MEDIA_TYPE, engine_summary, write_json
from workers.backends.tensorrt_family.builder import BuiltEngine, io_tensors
from workers.backends.tensorrt_family.capabilities import TENSORRT
from workers.backends.tensorrt_family.io_plan import describe_engine
from workers.backends.tensorrt_family.library import import_library, library_version, logger_for
from workers.backends.tensorrt_family.metadata import engine_metadata, inspect_engine
from workers.backends.torch_tensorrt import program as programs
from workers.backends.torch_tensorrt.config import TorchTensorRTConfig

ROUTE = "torch_tensorrt.dynamo.convert_exported_program_to_serialized_trt_engine"


class TorchTensorRTBackend(Backend):
    def version(self) -> str:
        import torch_tensorrt

        return str(torch_tensorrt.__version__)

    @classmethod
    def classify(cls, exc: BaseException, precision: str) -> str | None:
        return programs.unsupported_reason(exc) or super().classify(exc, precision)

    def _options(self, ctx: JobContext) -> dict[str, Any]:
        """Settings the farm decides (full compilation into one engine,
        TF32 off unless asked) and the knobs the user set."""
        import torch

        knobs = cast(TorchTensorRTConfig, self.config)
        options: dict[str, Any] = {"device": torch.device("cuda", ctx.device.index or 0),
                                   "require_full_compilation": True, "min_block_size": 1,
                                   "disable_tf32": not knobs.tf32, "use_explicit_typing": True}
        if knobs.optimization_level is not None:
            options["optimization_level"] = knobs.optimization_level
        if knobs.workspace_mb is not None:
            options["workspace_size"] = knobs.workspace_mb << 20
        if knobs.max_aux_streams is not None:
            options["max_aux_streams"] = knobs.max_aux_streams
        if knobs.use_fp32_acc is not None:
            options["use_fp32_acc"] = knobs.use_fp32_acc
        return options

    def build(self, ctx: JobContext) -> BuildResult:
        if ctx.device.kind != "gpu":
            raise BackendUnsupported("torch-tensorrt builds on the GPU it tunes for; this worker is the CPU "
                                     f"{ctx.device.name}")
        import torch
        import torch_tensorrt

        start = time.perf_counter()
        torch.cuda.set_device(ctx.device.index or 0)
        program = programs.cast_program(programs.load_program(ctx.model_path), ctx.precision)
        prepare_s = time.perf_counter() - start
        ranges = programs.input_ranges(program, ctx.model, ctx.shapes)
        inputs = [_input(torch_tensorrt, r) for r in ranges]
        input_names, output_names = programs.binding_names(program, ctx.model)
        convert = torch_tensorrt.dynamo.convert_exported_program_to_serialized_trt_engine
        options, dropped = _accepted(convert, {**self._options(ctx), "arg_input_binding_names": input_names,
                                               "output_binding_names": output_names})
        if "output_binding_names" in dropped:
            raise BackendUnsupported(f"torch-tensorrt {torch_tensorrt.__version__} cannot name engine bindings "
                                     "(output_binding_names); the farm feeds and checks engines by the model's "
                                     "input and output names: install a newer torch-tensorrt")
        engine_start = time.perf_counter()
        try:
            serialized = bytes(convert(program, arg_inputs=inputs, **options))
        except Exception as exc:
            reason = programs.unsupported_reason(exc)
            if reason:
                raise BackendUnsupported(reason) from None
            raise
        end = time.perf_counter()
        engine_path = ctx.workdir / "model.engine"
        engine_path.write_bytes(serialized)
        lib = import_library(TENSORRT)
        version = library_version(lib)
        built, inspection = _describe(lib, serialized, options, ranges, dropped, torch_tensorrt.__version__)
        metadata = engine_metadata(TENSORRT, version, built, ctx.device, inspection,
                                   {"sha256": ctx.model.sha256, "precision": ctx.precision,
                                    "source_format": "torch.export (.pt2)", "route": ROUTE})
        info = {"build": self.config.resolved(), "resolved": built.settings, "prepare_s": prepare_s,
                "engine_build_s": end - engine_start, "source_format": "torch.export (.pt2)",
                "native_program": True, **engine_summary(metadata)}
        extras = {"engine-metadata": write_json(ctx.workdir / "engine-metadata.json", metadata)}
        return BuildResult(artifact=engine_path, build_s=end - start, info=info, extra_artifacts=extras,
                           media_type=ENGINE_MEDIA_TYPE)

    def load(self, artifact: Path, ctx: JobContext) -> Runner:
        import torch_tensorrt  # noqa: F401 - registers Torch-TensorRT's TensorRT plugins before deserializing

        from workers.backends.tensorrt_family.runtime import load_runner

        return load_runner(import_library(TENSORRT), TENSORRT, artifact, ctx, None)


def _input(torch_tensorrt: Any, rng: programs.InputRange) -> Any:
    if rng.min == rng.opt == rng.max:
        return torch_tensorrt.Input(rng.opt, dtype=rng.dtype, name=rng.name)
    return torch_tensorrt.Input(min_shape=rng.min, opt_shape=rng.opt, max_shape=rng.max, dtype=rng.dtype,
                                name=rng.name)


def _accepted(function: Any, options: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The options ``function`` takes by name, and the names it does not
    (Torch-TensorRT adds and retires keywords between versions)."""
    parameters = inspect.signature(function).parameters
    dropped = [name for name in options if name not in parameters]
    return {k: v for k, v in options.items() if k in parameters}, dropped


def _describe(lib: Any, serialized: bytes, options: dict, ranges: list, dropped: list[str],
              version: str) -> tuple[BuiltEngine, dict]:
    """What was built, read back from the engine (deserialized once on this GPU)."""
    runtime = lib.Runtime(logger_for(lib))
    engine = runtime.deserialize_cuda_engine(serialized)
    descs = describe_engine(engine) if engine is not None else []
    inputs, outputs = io_tensors(descs)
    settings = {
        "route": ROUTE, "torch_tensorrt": str(version), "strongly_typed": True,
        "options": {k: v for k, v in options.items() if k not in ("device",) and not k.endswith("binding_names")},
        "options_not_taken": dropped, "tf32": not options.get("disable_tf32", True),
        "profiles": [{r.name: {"min": list(r.min), "opt": list(r.opt), "max": list(r.max)} for r in ranges}],
        "hardware_compatibility_level": None, "version_compatible": False,
    }
    inspection = inspect_engine(lib, engine, "the engine did not deserialize on the GPU that built it")
    return BuiltEngine(serialized, settings, inputs, outputs), inspection
