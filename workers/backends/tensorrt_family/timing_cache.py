"""Full TensorRT's timing cache, shared by every build on the same kind of
GPU with the same TensorRT and CUDA versions.

Kernel timings are only valid for one (GPU model, TensorRT version, CUDA
version), so that triple is the cache's key and caches of different keys are
never combined. A build loads the cache first and merges what it learned
back afterwards under a file lock (several workers on one host), then
publishes the merged cache to the artifact store for other hosts.
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

from workers import artifact_index

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


@contextmanager
def locked(identity: CacheIdentity) -> Iterator[None]:
    path = artifact_index.local_path(KIND, identity.key, ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load(store: Any, identity: CacheIdentity) -> bytes:
    """The current cache (empty bytes = start a new one)."""
    with locked(identity):
        path = artifact_index.fetch(store, KIND, identity.key, SUFFIX)
        return path.read_bytes() if path else b""


def merge(lib: Any, store: Any, identity: CacheIdentity, learned: bytes) -> dict:
    """Combine ``learned`` into the current cache and publish the result."""
    with locked(identity):
        current_path = artifact_index.fetch(store, KIND, identity.key, SUFFIX)
        current = current_path.read_bytes() if current_path else b""
        merged = combine(lib, current, learned)
        path = artifact_index.write_local(KIND, identity.key, SUFFIX, merged)
        sha = artifact_index.publish(store, KIND, identity.key, path, identity.parts(), "application/octet-stream")
    return {"key": identity.key, "sha256": sha, "bytes": len(merged), **identity.parts()}


def combine(lib: Any, current: bytes, learned: bytes) -> bytes:
    """TensorRT's own merge; ``ignore_mismatch=False`` refuses a cache of
    another device or version instead of mixing it in."""
    logger = lib.Logger(lib.Logger.WARNING)
    builder: trt.Builder = lib.Builder(logger)
    config: trt.IBuilderConfig = builder.create_builder_config()
    base: trt.ITimingCache = config.create_timing_cache(current)
    addition: trt.ITimingCache = config.create_timing_cache(learned)
    if not base.combine(addition, False):
        # Keep what the build learned rather than a cache it cannot use.
        return learned
    return bytes(memoryview(base.serialize()))
