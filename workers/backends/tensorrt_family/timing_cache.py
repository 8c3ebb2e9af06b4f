"""Full TensorRT's timing cache, shared by every build on the same kind of
GPU with the same TensorRT and CUDA versions.

Kernel timings are only valid for one (GPU model, TensorRT version, CUDA
version), so that triple is the cache's key and caches of different keys are
never combined. A build loads the cache first and merges what it learned
back afterwards under a file lock (several workers on one host), then
publishes the merged cache to the artifact store for other hosts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workers import artifact_index
from workers.backends.tensorrt_family.library import last_error, logger_for

if TYPE_CHECKING:
    import tensorrt as trt

KIND = "timing-cache"
SUFFIX = ".cache"


@dataclass(frozen=True)
class CacheIdentity:
    gpu: str  # GPU model name, e.g. "NVIDIA H100 80GB HBM3"
    library: str  # "tensorrt"
    library_version: str
    cuda_version: str

    def parts(self) -> dict:
        return {"gpu": self.gpu.strip().lower(), "library": self.library,
                "library_version": self.library_version, "cuda_version": self.cuda_version}

    @property
    def key(self) -> str:
        return artifact_index.index_key({"timing_cache": self.parts()})


def cuda_runtime_version() -> str:
    """CUDA runtime version as "major.minor" (cuda-python), or "unknown"."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        return "unknown"
    err, version = cudart.cudaRuntimeGetVersion()
    if int(err) != 0:
        return "unknown"
    return f"{version // 1000}.{(version % 1000) // 10}"


def locked(identity: CacheIdentity):
    return artifact_index.locked(KIND, identity.key)


def load(store: Any, identity: CacheIdentity) -> bytes:
    """The current cache (empty bytes = start a new one)."""
    with locked(identity):
        path = artifact_index.fetch(store, KIND, identity.key, SUFFIX)
        return path.read_bytes() if path else b""


def merge(lib: Any, store: Any, identity: CacheIdentity, learned: bytes) -> dict:
    """Combine ``learned`` into the current cache and publish the result.
    Where TensorRT refuses to combine them, the shared cache is kept as it
    is (it holds every other build's timings) and the refusal is recorded."""
    with locked(identity):
        current_path = artifact_index.fetch(store, KIND, identity.key, SUFFIX)
        current = current_path.read_bytes() if current_path else b""
        merged, note = combine(lib, current, learned)
        if merged == current and current_path is not None:
            sha = artifact_index.lookup(KIND, identity.key)
            return {"key": identity.key, "sha256": sha, "bytes": len(current), "merge": note, **identity.parts()}
        path = artifact_index.write_local(KIND, identity.key, SUFFIX, merged)
        sha = artifact_index.publish(store, KIND, identity.key, path, identity.parts(), "application/octet-stream")
    return {"key": identity.key, "sha256": sha, "bytes": len(merged), "merge": note, **identity.parts()}


def combine(lib: Any, current: bytes, learned: bytes) -> tuple[bytes, str]:
    """TensorRT's own merge, logged through the farm's recording logger;
    ``ignore_mismatch=False`` refuses a cache of another device or version
    instead of mixing it in. Returns (cache to publish, what happened)."""
    if not current:
        return learned, "first cache for this GPU and version"
    logger = logger_for(lib)
    builder: trt.Builder = lib.Builder(logger)
    config: trt.IBuilderConfig = builder.create_builder_config()
    base: trt.ITimingCache | None = config.create_timing_cache(current)
    addition: trt.ITimingCache | None = config.create_timing_cache(learned)
    if base is None or addition is None:
        return current, "kept the shared cache: TensorRT could not read a cache (" + last_error(
            logger, "no error reported") + ")"
    if not base.combine(addition, False):
        return current, "kept the shared cache: TensorRT refused to combine it with this build's (" + last_error(
            logger, "no error reported") + ")"
    return bytes(memoryview(base.serialize())), "combined"
