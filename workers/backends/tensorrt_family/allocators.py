"""Device memory for engine I/O through cuda-python: fixed buffers for
tensors whose size is known before the launch, and an ``IOutputAllocator``
for outputs whose shape only the launch decides (NonZero, NMS), which
TensorRT calls with the size it needs and then tells the final shape.

Every cuda-python call is checked (``workers.timing.cuda_runtime.check``).
The allocator's callbacks run inside TensorRT: an exception there cannot
cross back into Python, so a failure is recorded, 0 returned (TensorRT then
fails the enqueue), and the runner raises the recorded error.
"""

from __future__ import annotations

from typing import Any

from farm.errors import BackendUnsupported


def cuda_runtime() -> Any:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        raise BackendUnsupported("running TensorRT engines needs cuda-python >= 12.6.1 (pip install "
                                 "'engine-farm[cuda]'), which is not installed on this worker") from None
    return cudart


def call(cudart: Any, name: str, *args: Any) -> Any:
    """Call a cuda-python runtime function; raise CudaError on an error code."""
    from workers.timing.cuda_runtime import check

    return check(getattr(cudart, name)(*args), name)


def handle(value: Any) -> int:
    """The integer handle of a cuda-python object (stream, pointer). Recent
    cuda-bindings deprecate ``int(obj)`` in favour of ``getPtr()``."""
    get_ptr = getattr(value, "getPtr", None)
    return int(get_ptr()) if callable(get_ptr) else int(value)


class DeviceBuffers:
    """One growable device buffer per tensor name."""

    def __init__(self, cudart: Any):
        self.cudart = cudart
        self.buffers: dict[str, tuple[int, int]] = {}  # name -> (pointer, bytes)

    def get(self, name: str, nbytes: int) -> int:
        pointer, size = self.buffers.get(name, (0, 0))
        if size < nbytes or not pointer:
            if pointer:
                call(self.cudart, "cudaFree", pointer)
            pointer = handle(call(self.cudart, "cudaMalloc", max(nbytes, 1)))
            self.buffers[name] = (pointer, max(nbytes, 1))
        return pointer

    def free(self) -> None:
        for pointer, _ in self.buffers.values():
            self.cudart.cudaFree(pointer)  # best effort: never hide the error that led here
        self.buffers.clear()


def make_output_allocator(lib: Any, cudart: Any) -> Any:
    """An ``IOutputAllocator`` of the flavor's module (its base class comes
    from the imported library, so the class is made at run time)."""
    base = lib.IOutputAllocator

    class OutputAllocator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.memory = DeviceBuffers(cudart)
            self.shapes: dict[str, tuple[int, ...]] = {}
            self.errors: list[str] = []

        def reallocate_output(self, tensor_name: str, memory: int, size: int, alignment: int) -> int:
            try:
                return self.memory.get(tensor_name, int(size))
            except Exception as exc:  # noqa: BLE001 - must not propagate into TensorRT
                self.errors.append(f"allocating {size} bytes for output {tensor_name!r} failed: {exc}")
                return 0

        def notify_shape(self, tensor_name: str, shape: Any) -> None:
            self.shapes[tensor_name] = tuple(int(shape[i]) for i in range(len(shape)))

        def pointer(self, name: str) -> int:
            return self.memory.buffers.get(name, (0, 0))[0]

    return OutputAllocator()
