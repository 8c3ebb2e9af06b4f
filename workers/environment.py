"""The environment a measurement was taken in, captured automatically."""

from __future__ import annotations

import functools
import os
import platform
import socket
import sys
from importlib import metadata

_PACKAGES = ("numpy", "onnx", "onnxruntime", "torch", "tensorrt", "tensorrt-rtx-cu13-bindings",
             "cuda-python", "cuda-bindings", "nvidia-ml-py", "triton", "engine-farm")


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    # Read once per process: the versions that count are the ones this
    # process imported, which a later pip install does not change.
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def capture() -> dict:
    return {**_fixed(), "packages": dict(package_versions())}


@functools.lru_cache(maxsize=1)
def _fixed() -> dict:
    # Fixed for the life of a worker process (its device pinning included).
    return {
        "host": socket.gethostname(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
