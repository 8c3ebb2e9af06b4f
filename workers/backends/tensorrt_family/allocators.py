"""Memory for engine I/O through cuda-python: fixed device buffers for
tensors whose size is known before the launch, pinned (page-locked) host
buffers for their host side, and an ``IOutputAllocator`` for outputs whose
shape only the launch decides (NonZero, NMS), which TensorRT calls with the
size it needs and then tells the final shape.

Host buffers are pinned as trtexec's are: a copy from pageable memory is
staged through a driver buffer and is not asynchronous, so an end-to-end
figure taken from pageable arrays is neither comparable with trtexec's nor
overlapped with compute. Where pinning fails (a host out of locked memory)
the buffer falls back to pageable memory and says so.

Outputs of data-dependent shape are allocated stream-ordered
(``reallocate_output_async`` with ``cudaMallocAsync``/``cudaFreeAsync`` on the
enqueue's stream), the callback TensorRT 10 prefers: the deprecated
synchronous ``reallocate_output`` would free and allocate with a device-wide
synchronisation inside the enqueue. It stays as the fallback that older
versions call.

Every cuda-python call is checked (``workers.timing.cuda_runtime.check``).
The allocator's callbacks run inside TensorRT: an exception there cannot
cross back into Python, so a failure is recorded, 0 returned (TensorRT then
fails the enqueue), and the runner raises the recorded error.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

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


class PinnedHost:
    """Page-locked host arrays (``cudaHostAlloc``), one per tensor name,
    reused while the shape and type stay the same."""

    def __init__(self, cudart: Any):
        self.cudart = cudart
        self.pointers: dict[str, tuple[int, int]] = {}  # name -> (pointer, bytes)
        self.pageable: list[str] = []  # names that could not be pinned (recorded)

    def array(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = max(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, 1)
        pointer, size = self.pointers.get(name, (0, 0))
        if size < nbytes:
            self._free_one(name)
            pointer = self._alloc(name, nbytes)
            if not pointer:
                return np.empty(shape, dtype=dtype)
            self.pointers[name] = (pointer, nbytes)
        buffer = (ctypes.c_byte * nbytes).from_address(pointer)
        return np.frombuffer(buffer, dtype=dtype, count=int(np.prod(shape, dtype=np.int64))).reshape(shape)

    def filled(self, name: str, source: np.ndarray) -> np.ndarray:
        """A pinned copy of ``source`` (the array TensorRT reads or the copy sends)."""
        array = self.array(name, tuple(source.shape), source.dtype)
        np.copyto(array, source, casting="no")
        return array

    def _alloc(self, name: str, nbytes: int) -> int:
        err, pointer = self.cudart.cudaHostAlloc(nbytes, self.cudart.cudaHostAllocDefault)
        if int(err) != 0:
            self.pageable.append(name)
            return 0
        return handle(pointer)

    def _free_one(self, name: str) -> None:
        pointer, _ = self.pointers.pop(name, (0, 0))
        if pointer:
            self.cudart.cudaFreeHost(pointer)

    def free(self) -> None:
        for name in list(self.pointers):
            self._free_one(name)


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

    def get_async(self, name: str, nbytes: int, stream: int) -> int:
        """Like ``get``, stream-ordered: the old buffer is freed and the new one
        allocated on ``stream`` (no device-wide synchronisation)."""
        pointer, size = self.buffers.get(name, (0, 0))
        if size < nbytes or not pointer:
            if pointer:
                call(self.cudart, "cudaFreeAsync", pointer, stream)
            pointer = handle(call(self.cudart, "cudaMallocAsync", max(nbytes, 1), stream))
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

        def reallocate_output_async(self, tensor_name: str, memory: int, size: int, alignment: int,
                                    stream: int) -> int:
            try:
                return self.memory.get_async(tensor_name, int(size), int(stream))
            except Exception as exc:  # noqa: BLE001 - must not propagate into TensorRT
                self.errors.append(f"allocating {size} bytes for output {tensor_name!r} failed: {exc}")
                return 0

        def reallocate_output(self, tensor_name: str, memory: int, size: int, alignment: int) -> int:
            # Called only by versions without the asynchronous callback.
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
