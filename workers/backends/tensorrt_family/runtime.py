"""Run an engine: deserialize, one execution context on the job's profile,
device buffers through cuda-python, ``execute_async_v3`` on a stream.

Where the engine cannot run (a CPU worker, a GPU the runtime does not
support, no cuda-python) ``load`` raises BackendUnsupported with the reason,
so the job keeps its built engine and ends ``unsupported``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from farm.errors import BackendUnsupported
from farm.spec import MeasureConfig
from workers.backends.base import DeviceContext, JobContext, Runner, TimingResult
from workers.backends.tensorrt_family.builder import dims
from workers.backends.tensorrt_family.capabilities import Flavor
from workers.backends.tensorrt_family.library import last_error, logger_for

if TYPE_CHECKING:
    import tensorrt as trt


def check_device(flavor: Flavor, device: DeviceContext) -> None:
    supported = flavor.runtime_compute_capabilities
    if device.kind != "gpu":
        where = f"compute capability {', '.join(supported)}" if supported else "an NVIDIA GPU"
        raise BackendUnsupported(f"{flavor.name} engines run only on a GPU ({where}); this worker is the CPU "
                                 f"{device.name}: the engine was built and stored, measure it on a GPU worker")


def _why_not(flavor: Flavor, device: DeviceContext) -> str:
    supported = flavor.runtime_compute_capabilities
    if supported and device.compute_capability not in supported:
        return (f" (compute capability {device.compute_capability}; the {flavor.name} runtime runs on "
                f"{', '.join(supported)})")
    return ""


def cuda_runtime() -> Any:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        raise BackendUnsupported("running TensorRT engines needs cuda-python (pip install 'engine-farm[cuda]'), "
                                 "which is not installed on this worker") from None
    return cudart


def call(cudart: Any, name: str, *args: Any) -> Any:
    """Call a cuda-python runtime function; raise CudaError on an error code."""
    from workers.timing.cuda_runtime import check

    return check(getattr(cudart, name)(*args), name)


def load_runner(lib: Any, flavor: Flavor, artifact: Path, ctx: JobContext) -> Runner:
    check_device(flavor, ctx.device)
    # On a GPU the runtime itself decides (and says why not): deserializing
    # needs no cuda-python, so its message is kept even where that is missing.
    logger = logger_for(lib)
    runtime: trt.Runtime = lib.Runtime(logger)
    engine: trt.ICudaEngine | None = runtime.deserialize_cuda_engine(artifact.read_bytes())
    if engine is None:
        raise BackendUnsupported(f"the {flavor.name} runtime cannot load the engine on {ctx.device.name}"
                                 f"{_why_not(flavor, ctx.device)}: {last_error(logger, 'no error reported')}")
    return EngineRunner(lib, cuda_runtime(), runtime, engine, ctx)


class EngineRunner(Runner):
    def __init__(self, lib: Any, cudart: Any, runtime: trt.Runtime, engine: trt.ICudaEngine, ctx: JobContext):
        self.lib, self.cudart = lib, cudart
        self.batch_size, self.device_index = ctx.batch_size, ctx.device.index or 0
        self.host: dict[str, np.ndarray] = {}  # host side of every bound tensor
        self.runtime, self.engine = runtime, engine  # the runtime must outlive the engine
        self.context: trt.IExecutionContext = engine.create_execution_context()
        self.stream = call(cudart, "cudaStreamCreate")
        self.buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, bytes)
        self.names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in self.names if engine.get_tensor_mode(n) == lib.TensorIOMode.INPUT]
        self.outputs = [n for n in self.names if n not in self.inputs]
        # One profile per job: profile 0 is the job's.
        self.context.set_optimization_profile_async(0, self.handle)

    @property
    def handle(self) -> int:
        return int(self.stream)

    def _buffer(self, name: str, nbytes: int) -> int:
        pointer, size = self.buffers.get(name, (0, 0))
        if size < nbytes:
            if pointer:
                call(self.cudart, "cudaFree", pointer)
            pointer = int(call(self.cudart, "cudaMalloc", max(nbytes, 1)))
            self.buffers[name] = (pointer, nbytes)
        return pointer

    def _dtype(self, name: str) -> np.dtype:
        try:
            return np.dtype(self.lib.nptype(self.engine.get_tensor_dtype(name)))
        except TypeError:
            raise BackendUnsupported(f"engine tensor {name!r} has a type numpy cannot hold") from None

    def _bind(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Set shapes, copy inputs to the device, bind every tensor; returns
        host arrays shaped for the outputs."""
        for name in self.inputs:
            host = np.ascontiguousarray(feeds[name], dtype=self._dtype(name))
            self.context.set_input_shape(name, list(host.shape))
            self.context.set_tensor_address(name, self._buffer(name, host.nbytes))
            self.host[name] = host
        self.copy_inputs(self.handle)
        outputs = {}
        for name in self.outputs:
            shape = tuple(dims(self.context.get_tensor_shape(name)))
            outputs[name] = self.host[name] = np.empty(shape, dtype=self._dtype(name))
            self.context.set_tensor_address(name, self._buffer(name, outputs[name].nbytes))
        call(self.cudart, "cudaStreamSynchronize", self.stream)
        return outputs

    def _copy(self, names: list[str], to_device: bool, stream_handle: int) -> None:
        kinds = self.cudart.cudaMemcpyKind
        kind = kinds.cudaMemcpyHostToDevice if to_device else kinds.cudaMemcpyDeviceToHost
        for name in names:
            host, (pointer, _) = self.host[name], self.buffers[name]
            dst, src = (pointer, host.ctypes.data) if to_device else (host.ctypes.data, pointer)
            call(self.cudart, "cudaMemcpyAsync", dst, src, host.nbytes, kind, stream_handle)

    def copy_inputs(self, stream_handle: int) -> None:
        self._copy(self.inputs, True, stream_handle)

    def copy_outputs(self, stream_handle: int) -> None:
        self._copy(self.outputs, False, stream_handle)

    def enqueue(self, stream_handle: int) -> None:
        if not self.context.execute_async_v3(stream_handle):
            raise RuntimeError("execute_async_v3 failed")

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self._bind(feeds)
        self.enqueue(self.handle)
        self.copy_outputs(self.handle)
        call(self.cudart, "cudaStreamSynchronize", self.stream)
        return {name: array.copy() for name, array in outputs.items()}

    def measure(self, feeds: dict[str, np.ndarray], config: MeasureConfig) -> TimingResult:
        from workers.timing.cuda import measure_enqueue

        self._bind(feeds)
        # One run outside the harness: TensorRT finishes lazy setup on the
        # first enqueue, which must not land in a CUDA graph capture.
        self.enqueue(self.handle)
        call(self.cudart, "cudaStreamSynchronize", self.stream)
        timing = measure_enqueue(self.enqueue, config, batch_size=self.batch_size, inputs_h2d=self.copy_inputs,
                                 outputs_d2h=self.copy_outputs, device=self.device_index)
        timing.settings.setdefault("enqueue", "IExecutionContext.execute_async_v3")
        return timing

    def close(self) -> None:
        if self.stream is None:
            return
        call(self.cudart, "cudaStreamSynchronize", self.stream)
        for pointer, _ in self.buffers.values():
            call(self.cudart, "cudaFree", pointer)
        self.buffers.clear()
        call(self.cudart, "cudaStreamDestroy", self.stream)
        self.stream = None
