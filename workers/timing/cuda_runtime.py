"""cuda-python's runtime API with every return code checked.

cuda.bindings returns ``(cudaError_t, *values)`` from each call instead of
raising; ``check`` turns a failure into a ``CudaError`` that names the call
and CUDA's own error name and text, and returns the values otherwise.
Imported lazily so CPU-only processes never load CUDA.
"""

from __future__ import annotations


class CudaError(RuntimeError):
    """A CUDA runtime call failed."""


def runtime():
    try:
        from cuda.bindings import runtime as rt
    except ImportError:
        from farm.optional import missing_message

        raise CudaError(missing_message("cuda", "GPU timing")) from None
    return rt


def error_name(err) -> str:
    rt = runtime()
    name = rt.cudaGetErrorName(err)[1]
    text = rt.cudaGetErrorString(err)[1]
    decode = (lambda b: b.decode() if isinstance(b, bytes) else str(b))
    return f"{decode(name)}: {decode(text)}"


def check(result, what: str):
    """``result`` of a cuda.bindings call -> its value(s); raise on error."""
    rt = runtime()
    values = result if isinstance(result, tuple) else (result,)
    err, rest = values[0], values[1:]
    if err != rt.cudaError_t.cudaSuccess:
        raise CudaError(f"{what} failed: {error_name(err)}")
    if not rest:
        return None
    return rest[0] if len(rest) == 1 else rest


def device_used_mb(device: int = 0) -> float:
    """Device memory in use on ``device`` (all processes), MiB: what the
    farm's one memory figure is a difference of (docs/fields.md, memory_mb)."""
    rt = runtime()
    check(rt.cudaSetDevice(device), f"cudaSetDevice({device})")
    free, total = check(rt.cudaMemGetInfo(), "cudaMemGetInfo")
    return (total - free) / 2**20
