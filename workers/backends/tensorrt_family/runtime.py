"""Run an engine as Polygraphy's TrtRunner does: deserialize, an execution
context per stream, inputs bound by name (shape tensors from host memory,
the rest from device buffers), outputs in fixed buffers or, where the shape
is data-dependent, through an ``IOutputAllocator``, ``execute_async_v3`` on
a stream. Every TensorRT call that reports failure is checked: the job then
fails with one line naming the call, the tensor and the shapes.

The decisions (host or device, allocator or not, which profile, graph or
not) are ``io_plan``'s; this module carries them out. Timing uses trtexec
11's defaults (``measure_settings``), ``measure.streams`` N runs one
context per stream concurrently (N lanes of ``workers.timing.cuda``), and
``measure.layer_profile`` adds an ``IProfiler`` run on a separate context.

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
from workers.backends.tensorrt_family import io_plan, measure_settings, plugins, runtime_config
from workers.backends.tensorrt_family.allocators import (DeviceBuffers, PinnedHost, call, cuda_runtime, handle,
                                                         make_output_allocator)
from workers.backends.tensorrt_family.capabilities import Flavor
from workers.backends.tensorrt_family.io_plan import EngineError, TensorDesc, dims
from workers.backends.tensorrt_family.layer_profile import PROFILE_ITERATIONS, layer_details, make_profiler
from workers.backends.tensorrt_family.library import last_error, logger_for

if TYPE_CHECKING:
    import tensorrt as trt

__all__ = ["EngineRunner", "call", "check_device", "cuda_runtime", "load_runner"]


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


def load_runner(lib: Any, flavor: Flavor, artifact: Path, ctx: JobContext, knobs: Any = None) -> Runner:
    check_device(flavor, ctx.device)
    # On a GPU the runtime itself decides (and says why not): deserializing
    # needs no cuda-python, so its message is kept even where that is missing.
    logger = logger_for(lib)
    cudart = _cuda_or_none()
    if cudart is not None:
        # The engine's device memory (weights) is allocated on the current device at deserialization.
        call(cudart, "cudaSetDevice", ctx.device.index or 0)
    runtime: trt.Runtime = lib.Runtime(logger)
    plugin_notes = plugins.register(lib, logger, tuple(getattr(knobs, "plugins", None) or ()))
    if getattr(knobs, "version_compatible", None):
        # A version-compatible engine carries a lean runtime (host code) that must be allowed to run;
        # only engines the job itself asked to build that way get this.
        runtime.engine_host_code_allowed = True
    engine: trt.ICudaEngine | None = runtime.deserialize_cuda_engine(artifact.read_bytes())
    if engine is None:
        raise BackendUnsupported(f"the {flavor.name} runtime cannot load the engine on {ctx.device.name}"
                                 f"{_why_not(flavor, ctx.device)}: {last_error(logger, 'no error reported')}")
    runner = EngineRunner(lib, cudart if cudart is not None else cuda_runtime(), runtime, engine, ctx, logger,
                          flavor=flavor)
    runner.load_notes["plugins"] = plugin_notes
    return runner


def _cuda_or_none() -> Any:
    try:
        return cuda_runtime()
    except BackendUnsupported:
        return None


class _Binding:
    """One execution context with its stream, buffers and output allocator."""

    def __init__(self, runner: EngineRunner, graph_strategy: str = "DISABLED"):
        self.runner, self.lib, self.cudart = runner, runner.lib, runner.cudart
        self.graph_strategy = graph_strategy  # every lane's context graphs alike (measure)
        context: trt.IExecutionContext | None = runner.new_context(graph_strategy)
        if context is None:
            raise EngineError("TensorRT could not create an execution context (out of GPU memory?): "
                              + last_error(runner.logger, "no error reported"))
        self.context: trt.IExecutionContext = context
        self.stream_obj = call(self.cudart, "cudaStreamCreateWithFlags", self.cudart.cudaStreamNonBlocking)
        self.stream = handle(self.stream_obj)
        self.memory = DeviceBuffers(self.cudart)
        self.pinned = PinnedHost(self.cudart)  # host side of every device tensor, page-locked as trtexec's
        self.allocator = make_output_allocator(self.lib, self.cudart)
        self.host: dict[str, np.ndarray] = {}  # host side of every bound tensor
        self.device_inputs: list[str] = []
        self.static_outputs: list[str] = []
        self.allocated_outputs: list[str] = []

    def _check(self, ok: bool, what: str) -> None:
        if not ok:
            raise EngineError(f"{what} failed: {last_error(self.runner.logger, 'TensorRT gave no reason')}")

    def bind(self, feeds: dict[str, np.ndarray]) -> None:
        runner = self.runner
        runner.logger.messages.clear()  # errors quoted below must be this binding's, not an earlier job's
        arrays = {d.name: runner.host_array(d, feeds) for d in io_plan.inputs(runner.descs)}
        shapes = {n: tuple(a.shape) for n, a in arrays.items()}
        values = {d.name: tuple(int(v) for v in arrays[d.name].ravel())
                  for d in io_plan.inputs(runner.descs) if d.shape_tensor}
        index = io_plan.pick_profile(runner.profiles, shapes, values) if runner.profiles else 0
        self._check(self.context.set_optimization_profile_async(index, self.stream),
                    f"set_optimization_profile_async({index})")
        self.device_inputs = []
        for desc in io_plan.inputs(runner.descs):
            array = arrays[desc.name]
            self._check(self.context.set_input_shape(desc.name, list(array.shape)),
                        f"set_input_shape({desc.name!r}, {list(array.shape)}) for profile {index}")
            if io_plan.input_memory(desc) == "host":
                self.host[desc.name] = array
                address = array.ctypes.data  # TensorRT reads shape-tensor values on the host
            else:
                array = self.host[desc.name] = self.pinned.filled(desc.name, array)
                address = self.memory.get(desc.name, array.nbytes)
                self.device_inputs.append(desc.name)
            self._check(self.context.set_tensor_address(desc.name, address), f"set_tensor_address({desc.name!r})")
        missing = self.context.infer_shapes()
        if missing:
            raise EngineError(f"TensorRT still needs shapes or values for inputs {', '.join(missing)} "
                              f"(given shapes {shapes})")
        self._bind_outputs(shapes)
        self.copy_inputs(self.stream)
        call(self.cudart, "cudaStreamSynchronize", self.stream_obj)

    def _bind_outputs(self, shapes: dict) -> None:
        self.static_outputs, self.allocated_outputs = [], []
        for desc in io_plan.outputs(self.runner.descs):
            resolved = dims(self.context.get_tensor_shape(desc.name))
            memory = io_plan.output_memory(resolved, desc.shape_tensor)
            if memory == "allocator":
                self._check(self.context.set_output_allocator(desc.name, self.allocator),
                            f"set_output_allocator({desc.name!r}) for its data-dependent shape {list(resolved)}")
                self.allocated_outputs.append(desc.name)
                continue
            dtype = self.runner.dtype(desc.name)
            array = self.host[desc.name] = (np.empty(resolved, dtype=dtype) if memory == "host"
                                            else self.pinned.array(desc.name, resolved, dtype))
            address = array.ctypes.data if memory == "host" else self.memory.get(desc.name, array.nbytes)
            self._check(self.context.set_tensor_address(desc.name, address),
                        f"set_tensor_address({desc.name!r}) for output shape {list(resolved)} (inputs {shapes})")
            if memory == "static":
                self.static_outputs.append(desc.name)  # host outputs are written in place: nothing to copy

    def _copy(self, name: str, pointer: int, to_device: bool, stream: int) -> None:
        kinds = self.cudart.cudaMemcpyKind
        host = self.host[name]
        kind = kinds.cudaMemcpyHostToDevice if to_device else kinds.cudaMemcpyDeviceToHost
        dst, src = (pointer, host.ctypes.data) if to_device else (host.ctypes.data, pointer)
        call(self.cudart, "cudaMemcpyAsync", dst, src, host.nbytes, kind, stream)

    def copy_inputs(self, stream: int) -> None:
        for name in self.device_inputs:
            self._copy(name, self.memory.buffers[name][0], True, stream)

    def copy_outputs(self, stream: int) -> None:
        for name in self.static_outputs:
            self._copy(name, self.memory.buffers[name][0], False, stream)
        for name in self.allocated_outputs:
            shape = self.allocator.shapes.get(name)
            if shape is None:
                continue  # not run yet: TensorRT has not said the shape
            dtype = self.runner.dtype(name)
            if name not in self.host or self.host[name].shape != shape:
                self.host[name] = self.pinned.array(name, shape, dtype)
            self._copy(name, self.allocator.pointer(name), False, stream)

    def enqueue(self, stream: int) -> None:
        if not self.context.execute_async_v3(stream):
            errors = "; ".join(self.allocator.errors) or last_error(self.runner.logger, "TensorRT gave no reason")
            raise EngineError(f"execute_async_v3 failed: {errors}")

    def run(self) -> dict[str, np.ndarray]:
        self.enqueue(self.stream)
        self.copy_outputs(self.stream)
        call(self.cudart, "cudaStreamSynchronize", self.stream_obj)
        if self.allocator.errors:
            raise EngineError("; ".join(self.allocator.errors))
        return {d.name: self.host[d.name].copy() for d in io_plan.outputs(self.runner.descs)}

    def close(self) -> None:
        if self.stream_obj is None:
            return
        self.cudart.cudaStreamSynchronize(self.stream_obj)
        self.memory.free()
        self.pinned.free()
        self.allocator.memory.free()
        self.cudart.cudaStreamDestroy(self.stream_obj)
        self.stream_obj = None


class EngineRunner(Runner):
    multi_stream = True  # measure.streams: one execution context and stream per copy

    def __init__(self, lib: Any, cudart: Any, runtime: trt.Runtime, engine: trt.ICudaEngine, ctx: JobContext,
                 logger: Any = None, flavor: Flavor | None = None):
        self.lib, self.cudart, self.logger = lib, cudart, logger or logger_for(lib)
        self.batch_size, self.device_index = ctx.batch_size, ctx.device.index or 0
        self.runtime, self.engine = runtime, engine  # the runtime must outlive the engine
        self.descs: list[TensorDesc] = io_plan.describe_engine(engine)
        self.profiles = io_plan.engine_profiles(engine, self.descs)
        call(cudart, "cudaSetDevice", self.device_index)
        self.load_notes: dict[str, Any] = {}
        self.rtx = _RtxRuntime.start(lib, flavor, engine, ctx) if flavor is not None and flavor.runtime_config else None
        self.main = _Binding(self)
        self.extra: list[_Binding] = []  # contexts of the other streams (measure.streams)

    def new_context(self, graph_strategy: str = "DISABLED") -> Any:
        """An execution context: RTX engines get their runtime configuration
        (runtime cache, eager kernel specialisation, graph strategy)."""
        if self.rtx is None:
            return self.engine.create_execution_context()
        return self.rtx.context(graph_strategy)

    def dtype(self, name: str) -> np.dtype:
        try:
            return np.dtype(self.lib.nptype(self.engine.get_tensor_dtype(name)))
        except TypeError:
            raise BackendUnsupported(f"engine tensor {name!r} has a type numpy cannot hold") from None

    def host_array(self, desc: TensorDesc, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if desc.name not in feeds:
            raise EngineError(f"the engine needs input {desc.name!r}; the job fed {', '.join(feeds)}")
        return np.ascontiguousarray(feeds[desc.name], dtype=self.dtype(desc.name))

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.main.bind(feeds)
        return self.main.run()

    def _prepare(self, feeds: dict[str, np.ndarray], config: MeasureConfig) -> tuple[MeasureConfig, dict]:
        self.main.bind(feeds)
        # One run outside the harness: TensorRT finishes lazy setup on the
        # first enqueue (and the allocator learns output sizes), which must
        # not land in a CUDA graph capture.
        self.main.run()
        from workers.timing.cuda import wants_graph

        wanted = wants_graph(config)
        capturable = _capturable(self.main)
        plan, reason = io_plan.graph_plan(wanted, self.main.allocated_outputs, capturable, self.rtx is not None)
        if plan == "runtime":
            self._rebind_main(feeds, "WHOLE_GRAPH_CAPTURE")
        timed, notes = measure_settings.trtexec_defaults(config, plan == "farm", reason)
        notes.update(self.load_notes, cuda_graph_by=plan, stream_capturable=capturable,
                     host_memory="pinned" if not self.main.pinned.pageable else
                     f"pageable for {', '.join(self.main.pinned.pageable)} (pinning failed)")
        if self.rtx is not None:
            notes["rtx_runtime"] = dict(self.rtx.notes)
        return timed, notes

    def _rebind_main(self, feeds: dict[str, np.ndarray], graph_strategy: str) -> None:
        self.main.close()
        self.main = _Binding(self, graph_strategy)
        self.main.bind(feeds)
        self.main.run()

    def measure(self, feeds: dict[str, np.ndarray], config: MeasureConfig) -> TimingResult:
        """One lane per stream (one execution context each), through the one
        harness: ``streams: 1`` and ``streams: N`` are timed alike."""
        from workers.timing.cuda import Lane, measure_lanes

        timed, notes = self._prepare(feeds, config)
        # Extra lanes graph as the main context does (a runtime-captured graph in each, or none).
        for stale in [b for b in self.extra if b.graph_strategy != self.main.graph_strategy]:
            stale.close()
            self.extra.remove(stale)
        while len(self.extra) < timed.streams - 1:
            binding = _Binding(self, self.main.graph_strategy)
            binding.bind(feeds)
            binding.run()
            self.extra.append(binding)
        bindings = [self.main, *self.extra[:timed.streams - 1]]
        lanes = [Lane(b.enqueue, b.stream, b.copy_inputs, b.copy_outputs) for b in bindings]
        timing = measure_lanes(lanes, timed, batch_size=self.batch_size, capture_graph=timed.cuda_graph,
                               device=self.device_index)
        if notes["end_to_end_pass"]:
            e2e = measure_lanes(lanes, measure_settings.end_to_end_pass(timed), batch_size=self.batch_size,
                                capture_graph=timed.cuda_graph, device=self.device_index, telemetry=False)
            timing.e2e_samples_ms = e2e.e2e_samples_ms
            notes["end_to_end_pass_iterations"] = len(e2e.e2e_samples_ms)
        timing.settings.update(notes, enqueue="IExecutionContext.execute_async_v3, one context per stream",
                               output_allocator=self.main.allocated_outputs,
                               host_inputs=[d.name for d in io_plan.inputs(self.descs) if d.shape_tensor])
        return timing

    def serving_instances(self, count: int) -> list:
        """One execution context and stream per instance (as ``measure.streams``),
        bound on its first batch; later batches only copy new input values in."""
        while len(self.extra) < count - 1:
            self.extra.append(_Binding(self))
        return [_serving_call(b) for b in [self.main, *self.extra[:count - 1]]]

    def profile_layers(self, feeds: dict[str, np.ndarray], config: MeasureConfig) -> dict | None:
        """trtexec's --separateProfileRun: a fresh context with an IProfiler,
        no CUDA graph, one synchronised run per iteration."""
        from workers.backends.tensorrt_family.metadata import inspect_engine
        from workers.timing.layers import layer_table

        binding = _Binding(self)
        try:
            profiler = make_profiler(self.lib)
            binding.context.profiler = profiler
            binding.context.enqueue_emits_profile = False
            binding.bind(feeds)
            binding.run()  # lazy setup outside the profile
            binding.context.report_to_profiler()
            profiler.times.clear()
            for _ in range(PROFILE_ITERATIONS):
                binding.run()
                binding._check(binding.context.report_to_profiler(), "report_to_profiler")
        finally:
            binding.close()
        inspection = inspect_engine(self.lib, self.engine)
        table = layer_table(profiler.times, layer_details(inspection), source="TensorRT IProfiler",
                            iterations=PROFILE_ITERATIONS,
                            settings={"context": "separate execution context", "cuda_graph": False})
        table["engine_layers"] = inspection.get("layers", [])
        return table

    def close(self) -> None:
        for binding in [self.main, *self.extra]:
            binding.close()
        self.extra.clear()
        if self.rtx is not None:
            self.rtx.publish()


def _capturable(binding: _Binding) -> bool | None:
    """The context's own word on stream capture, where the library has the call."""
    check = getattr(binding.context, "is_stream_capturable", None)
    return bool(check(binding.stream)) if check is not None else None


class _RtxRuntime:
    """TensorRT-RTX's runtime configuration for every context of one engine,
    and its runtime cache (workers/backends/tensorrt_family/runtime_config.py)."""

    def __init__(self, lib: Any, engine: Any, store: Any, identity: runtime_config.RuntimeCacheIdentity | None):
        self.lib, self.engine, self.store, self.identity = lib, engine, store, identity
        self.blob = runtime_config.load(store, identity) if identity is not None and store is not None else b""
        self.cache: Any = None
        self.notes: dict[str, Any] = {}

    @classmethod
    def start(cls, lib: Any, flavor: Flavor, engine: Any, ctx: JobContext) -> _RtxRuntime:
        identity = runtime_config.RuntimeCacheIdentity(ctx.device.name, flavor.name, str(getattr(
            lib, "__version__", "unknown")), runtime_config.driver_version())
        return cls(lib, engine, ctx.store, identity)

    def context(self, graph_strategy: str) -> Any:
        config, cache, notes = runtime_config.make_config(self.lib, self.engine, self.blob, graph_strategy)
        self.cache = self.cache or cache
        self.notes.update(notes)
        return self.engine.create_execution_context(config)

    def publish(self) -> None:
        if self.cache is not None and self.identity is not None and self.store is not None:
            self.notes["runtime_cache_published"] = runtime_config.publish(self.store, self.identity, self.cache)


def _serving_call(binding: _Binding):
    bound = [False]

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not bound[0]:
            binding.bind(feeds)  # shapes, profile, addresses: the served batch shape never changes
            bound[0] = True
        else:
            for name in binding.device_inputs:
                np.copyto(binding.host[name], feeds[name], casting="unsafe")
            binding.copy_inputs(binding.stream)
        return binding.run()
    return run
