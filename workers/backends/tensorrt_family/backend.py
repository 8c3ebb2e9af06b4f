"""The Backend both TensorRT-family libraries use; subclasses set ``flavor``.

build: precision transform of the model (cached, shared across jobs) ->
strongly typed build with the job's profile -> engine + metadata JSON.
load: the runtime, or BackendUnsupported saying why it cannot run here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, ClassVar

from farm.errors import BackendUnsupported
from workers.backends.base import Backend, BuildResult, JobContext, Runner
from workers.backends.tensorrt_family import timing_cache
from workers.backends.tensorrt_family.builder import build_engine
from workers.backends.tensorrt_family.capabilities import Flavor
from workers.backends.tensorrt_family.library import import_library, library_version
from workers.backends.tensorrt_family.metadata import engine_metadata, inspect_engine, no_engine_reason
from workers.precision.prepared import prepare

ENGINE_MEDIA_TYPE = "application/x-tensorrt-engine"


class TensorRTFamilyBackend(Backend):
    flavor: ClassVar[Flavor]

    def _library(self) -> Any:
        return import_library(self.flavor)

    def version(self) -> str:
        return library_version(self._library())

    def _check_job(self, ctx: JobContext) -> None:
        # Precisions and where it builds are its capabilities' (checked before a job reaches here);
        # this guards direct callers against a CPU build of a backend that tunes on its GPU.
        if ctx.device.kind != "gpu" and not type(self.config).capabilities().build_anywhere:
            raise BackendUnsupported(f"{self.flavor.name} builds on the GPU it tunes for; "
                                     f"this worker is the CPU {ctx.device.name}")

    def _transform_options(self, ctx: JobContext) -> dict:
        options: dict[str, Any] = {"consumer": self.flavor.name}
        if ctx.precision == "bf16" and self.flavor.bf16_fp32_ops:
            options["keep_fp32"] = list(self.flavor.bf16_fp32_ops)
        if ctx.precision in ("int8", "fp8"):
            options["per_channel"] = getattr(self.config, "per_channel", None) is not False
        return options

    def _timing_identity(self, ctx: JobContext, version: str) -> timing_cache.CacheIdentity | None:
        wanted = getattr(self.config, "timing_cache", None) is not False
        if not (self.flavor.timing_cache and wanted and ctx.device.kind == "gpu"):
            return None
        return timing_cache.CacheIdentity(ctx.device.name, self.flavor.name, version,
                                          timing_cache.cuda_runtime_version())

    def _runs_here(self, ctx: JobContext) -> bool:
        supported = self.flavor.runtime_compute_capabilities
        return ctx.device.kind == "gpu" and (not supported or ctx.device.compute_capability in supported)

    def build(self, ctx: JobContext) -> BuildResult:
        self._check_job(ctx)
        lib = self._library()
        version = library_version(lib)
        # build_s covers the precision's preparation (fp16 conversion, Q/DQ) as ONNX Runtime's covers its
        # quantization: the time from the model to a runnable artifact; the two parts are in info.
        start = time.perf_counter()
        prepared = prepare(ctx, ctx.precision, self._transform_options(ctx))
        prepare_s = time.perf_counter() - start
        identity = self._timing_identity(ctx, version)
        cache = timing_cache.load(ctx.store, identity) if identity else None
        engine_start = time.perf_counter()
        built = build_engine(lib, self.flavor, self.config, prepared.path, ctx.shapes, ctx.precision, cache,
                             shape_values=shape_tensor_values(ctx), engine_here=self._runs_here(ctx))
        end = time.perf_counter()
        build_s = end - start
        info: dict[str, Any] = {"build": self.config.resolved(), "resolved": built.settings,
                                "prepare_s": prepare_s, "engine_build_s": end - engine_start,
                                "precision_model": prepared.info,
                                "fallbacks": dict(prepared.info.get("fallbacks") or {})}
        if identity and built.timing_cache is not None:
            info["timing_cache"] = timing_cache.merge(lib, ctx.store, identity, built.timing_cache)
        engine_path = ctx.workdir / "model.engine"
        engine_path.write_bytes(built.serialized)
        inspection = inspect_engine(lib, built.engine, no_engine_reason(self.flavor, ctx.device))
        built.engine = None  # the runner deserializes its own copy; free this one's device memory now
        metadata = engine_metadata(self.flavor, version, built, ctx.device, inspection,
                                   {"sha256": ctx.model.sha256, "precision": ctx.precision,
                                    "prepared": prepared.info.get("key")})
        info.update(engine_summary(metadata))
        extras = {"engine-metadata": write_json(ctx.workdir / "engine-metadata.json", metadata)}
        if prepared.kind:
            extras[prepared.kind] = prepared.path
        return BuildResult(artifact=engine_path, build_s=build_s, info=info, extra_artifacts=extras,
                           media_type=ENGINE_MEDIA_TYPE)

    def load(self, artifact: Path, ctx: JobContext) -> Runner:
        from workers.backends.tensorrt_family.runtime import load_runner

        return load_runner(self._library(), self.flavor, artifact, ctx, self.config)


def shape_tensor_values(ctx: JobContext) -> dict[str, list[int]]:
    """The values the job feeds each integer input of rank <= 1 (the only
    inputs that can be shape tensors), from the user's data only: generated
    numbers would build an engine for shapes nobody runs."""
    if ctx.data is None:
        return {}
    feeds = ctx.measurement_feeds()
    return {name: [int(v) for v in array.ravel()] for name, array in feeds.items()
            if array.ndim <= 1 and array.dtype.kind in "iu"}


def engine_summary(metadata: dict) -> dict:
    """The metadata fields worth having in the job row (the full JSON,
    layers included, is the engine-metadata artifact)."""
    layers = metadata["layers"]
    return {
        "library": metadata["library"], "library_version": metadata["library_version"],
        "runs_on": metadata["runs_on"], "built_on": metadata["built_on"],
        "hardware_compatibility_level": metadata["hardware_compatibility_level"],
        "inputs": metadata["inputs"], "outputs": metadata["outputs"], "profiles": metadata["profiles"],
        "engine_bytes": metadata["engine_bytes"],
        "layers": {k: v for k, v in layers.items() if k != "layers"},
    }


def write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    return path
