"""TensorRT-RTX's runtime configuration (``IRuntimeConfig``), set on every
execution context the farm creates for an RTX engine:

- **runtime cache**: RTX compiles kernels just in time when an engine is
  loaded; the ``IRuntimeCache`` keeps them, so it is stored per (GPU model,
  RTX version, driver) through the artifact store like full TensorRT's timing
  cache, loaded before the first context and published after the job;
- **dynamic-shape kernel specialisation EAGER**: the default (LAZY) compiles
  shape-specialised kernels in the background and swaps them in while the
  engine runs, which would change kernels *during* a timed window; EAGER
  compiles them when the shapes are set, before any timing;
- **CUDA graphs**: the farm captures the enqueue itself only where
  ``IExecutionContext.is_stream_capturable(stream)`` says the context can be
  captured (RTX requires engines built with ``REQUIRE_USER_ALLOCATION`` for
  that, which the farm's RTX builds set); otherwise the runtime's own graphs
  (``CudaGraphStrategy.WHOLE_GRAPH_CAPTURE``) replay the engine.

Full TensorRT has none of this (no IRuntimeConfig strategies, a build-time
timing cache instead), so its contexts are created as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workers import artifact_index

KIND = "runtime-cache"
SUFFIX = ".cache"


@dataclass(frozen=True)
class RuntimeCacheIdentity:
    gpu: str
    library: str
    library_version: str
    driver: str

    def parts(self) -> dict:
        return {"gpu": self.gpu.strip().lower(), "library": self.library, "library_version": self.library_version,
                "driver": self.driver}

    @property
    def key(self) -> str:
        return artifact_index.index_key({"runtime_cache": self.parts()})


def driver_version() -> str:
    """The NVIDIA driver's version (kernels compiled by one driver are not
    reused under another), or "unknown"."""
    try:
        import pynvml  # type: ignore[import-untyped]

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
    except Exception:  # noqa: BLE001 - no NVML: the cache key says so
        return "unknown"
    return version.decode() if isinstance(version, bytes) else str(version)


def make_config(lib: Any, engine: Any, cache_blob: bytes, graph_strategy: str = "DISABLED") -> tuple[Any, Any, dict]:
    """(IRuntimeConfig, IRuntimeCache, what was set) for one RTX context."""
    config = engine.create_runtime_config()
    cache = config.create_runtime_cache()
    loaded = False
    if cache_blob:
        loaded = bool(cache.deserialize(cache_blob))
    config.set_runtime_cache(cache)
    config.dynamic_shapes_kernel_specialization_strategy = lib.DynamicShapesKernelSpecializationStrategy.EAGER
    config.cuda_graph_strategy = getattr(lib.CudaGraphStrategy, graph_strategy)
    notes = {"runtime_cache": ("loaded" if loaded else "refused; started empty") if cache_blob else "new",
             "kernel_specialization": "eager", "runtime_cuda_graph_strategy": graph_strategy.lower()}
    return config, cache, notes


def load(store: Any, identity: RuntimeCacheIdentity) -> bytes:
    with artifact_index.locked(KIND, identity.key):
        path = artifact_index.fetch(store, KIND, identity.key, SUFFIX)
        return path.read_bytes() if path else b""


def publish(store: Any, identity: RuntimeCacheIdentity, cache: Any) -> dict:
    """Store this context's cache as the current one for its identity: it is
    the cache the context loaded plus the kernels it compiled."""
    blob = bytes(memoryview(cache.serialize()))
    with artifact_index.locked(KIND, identity.key):
        path = artifact_index.write_local(KIND, identity.key, SUFFIX, blob)
        sha = artifact_index.publish(store, KIND, identity.key, path, identity.parts(), "application/octet-stream")
    return {"key": identity.key, "sha256": sha, "bytes": len(blob), **identity.parts()}
