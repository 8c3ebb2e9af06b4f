"""PyTorch backend: torch.compile with Inductor for the worker's GPU.

Build = read the model (torch.export ``.pt2``, or ONNX through onnx2torch),
cast it to the job's precision, compile it with Inductor at the job's static
shapes, and keep what the compile produced as the artifact:
``torch.compiler.save_cache_artifacts()`` bytes (Inductor FX-graph,
AOTAutograd and autotuning caches), zlib-compressed. The default compile is
Inductor's ``default`` mode (no autotuning: 8-35 s per real model on an
H100, where ``max-autotune`` took 200-350 s a job); ``max-autotune`` is the
*tuned* build, made only where it can change the answer (the finalists of a
search or ``farm best --remeasure``, see ``TorchConfig.tuned_build``). ONNX
models come in through the static import (onnx_import.py): shapes folded at
the job's shapes, no op reading a tensor into Python, so ``fullgraph`` traces
one graph and the runner captures one CUDA graph for the whole forward. An
AOTInductor package would be self-contained, but ``aoti_load_package``
segfaulted with torch 2.11 on an H200, while the cache artifact cut the next
compile from 19.6 s to 4.5 s.

Load = ``load_cache_artifacts`` + the same compile (now served from the
cache), bound to fixed device inputs (``StaticCall``). Measure = the
CUDA-event harness around that call on torch's current stream. A CUDA graph
is captured whatever the compile mode (the farm's one default,
``workers.timing.cuda.DEFAULT_CUDA_GRAPH``; off only with
``measure.cuda_graph: false``): the compiled call is captured once into a
``torch.cuda.CUDAGraph`` (capture needs torch's caching allocator, so torch
captures, not the harness) and each timed iteration is one graph launch, as
with trtexec's ``--useCudaGraph``. A failed capture falls back to the
compiled call and is recorded (``cuda_graph_fallback``). Inductor's own
cudagraph trees are not used: their per-call Python bookkeeping left the GPU
waiting on the host for small batches (MAD CV 10-18 % on an H200).
"""

from __future__ import annotations

import contextlib
import gc
import time
from pathlib import Path

import numpy as np

from farm.errors import BackendUnsupported
from farm.spec import MeasureConfig
from workers.backends.base import Backend, BuildResult, JobContext, Runner, TimingResult
from workers.inputs import make_feeds

DEFAULT_MODE = "default"  # fast: no autotuning (screening every configuration)
TUNED_MODE = "max-autotune"  # the finalists' rebuild (TorchConfig.tuned_build)
ARTIFACT_NAME = "torch-compile-cache.bin"
WARM_CALLS = 2  # compile, then one call from the compiled code
# mode -> the same Inductor mode without cudagraph trees (StaticCall captures instead)
_GRAPHLESS = {
    "max-autotune": "max-autotune-no-cudagraphs",
    "max-autotune-no-cudagraphs": "max-autotune-no-cudagraphs",
    "reduce-overhead": "default",
    "default": "default",
}


def resolve_mode(mode: str | None, cuda_graph: bool | None) -> tuple[str, bool]:
    """(torch.compile mode, capture a CUDA graph) from the build knob and the
    job's ``measure.cuda_graph``. The two are independent: the runner
    captures one graph in every mode unless the spec turns it off."""
    from workers.timing.cuda import DEFAULT_CUDA_GRAPH

    mode = mode or DEFAULT_MODE
    if mode not in _GRAPHLESS:
        raise BackendUnsupported(f"unknown torch.compile mode {mode!r} (allowed: {', '.join(_GRAPHLESS)})")
    graphs = DEFAULT_CUDA_GRAPH if cuda_graph is None else bool(cuda_graph)
    return _GRAPHLESS[mode], graphs


def compile_options(mode: str, overrides: dict | None) -> dict:
    """The mode's Inductor options plus the build's overrides. torch.compile
    takes a mode or options, not both, and Inductor settings patched around
    the call did not reach autotuning (seen on an H200 worker), so the mode
    goes in as its options."""
    import torch._inductor

    return {**torch._inductor.list_mode_options(mode), **(overrides or {})}


def _dtype(precision: str):
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def _set_numerics(tf32: bool) -> None:
    import torch

    # Process-wide switches: set for every job, since the worker runs many.
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")


def _fresh_cache_artifacts():
    """Collect only this compile's cache artifacts (a worker compiles many
    models; the artifact manager otherwise accumulates all of them)."""
    try:
        from torch.compiler._cache import CacheArtifactManager

        return CacheArtifactManager.with_fresh_cache()
    except (ImportError, AttributeError):
        return contextlib.nullcontext()


def _cache_counters() -> dict[str, int]:
    """Dynamo's counters of Inductor FX-graph and AOTAutograd cache hits and misses."""
    from torch._dynamo.utils import counters

    wanted = ("fxgraph_cache_hit", "fxgraph_cache_miss", "autograd_cache_hit", "autograd_cache_miss")
    return {k: int(v) for group in ("inductor", "aot_autograd") for k, v in counters[group].items() if k in wanted}


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


class TorchBackend(Backend):
    def version(self) -> str:
        import torch

        return torch.__version__

    def _settings(self, ctx: JobContext) -> dict:
        if ctx.device.kind != "gpu":
            raise BackendUnsupported("the torch backend measures on NVIDIA GPUs only")
        mode, graphs = resolve_mode(self.config.mode, ctx.measure.cuda_graph)
        fullgraph = self.config.fullgraph is not False
        return {"mode": mode, "cudagraphs": graphs, "fullgraph": fullgraph, "tf32": bool(self.config.tf32)}

    def _compile(self, ctx: JobContext, settings: dict):
        """(compiled callable, device inputs, source info), warmed up. The
        info's ``compile_phases_s`` times each phase of the build."""
        import torch

        from workers.backends.torch.model_source import load_module

        phases: dict[str, float] = {}
        clock = time.perf_counter()
        torch.cuda.set_device(ctx.device.index or 0)
        _set_numerics(settings["tf32"])
        module, source = load_module(ctx.model_path, ctx.run_shapes)
        phases["import_s"] = time.perf_counter() - clock
        clock = time.perf_counter()
        module = module.eval().requires_grad_(False).to(device="cuda", dtype=_dtype(ctx.precision))
        inputs = _device_inputs(make_feeds(ctx.model, ctx.run_shapes, seed=0), ctx)
        onnx_nodes = getattr(module, "onnx_nodes", None)
        if onnx_nodes is not None:  # ONNX: prove the static import left no host reads, at the job's dtype
            from workers.backends.torch.onnx_import import check_no_host_reads

            check_no_host_reads(module, inputs, onnx_nodes)
            source["host_reads"] = 0
        torch.cuda.synchronize()
        phases["device_and_host_read_check_s"] = time.perf_counter() - clock
        compiled = torch.compile(module, fullgraph=settings["fullgraph"], dynamic=False,
                                 options=compile_options(settings["mode"], self.config.inductor))
        try:
            with torch.no_grad():
                for call in range(WARM_CALLS):
                    clock = time.perf_counter()
                    compiled(*inputs)
                    torch.cuda.synchronize()
                    phases["trace_and_compile_s" if call == 0 else "first_compiled_call_s"] = \
                        time.perf_counter() - clock
        except torch.cuda.OutOfMemoryError as exc:
            raise BackendUnsupported(f"out of GPU memory at batch {ctx.batch_size}: {exc}".splitlines()[0]) from None
        except Exception as exc:
            from workers.backends.torch.compile_errors import describe

            raise BackendUnsupported(f"torch.compile failed: {describe(exc, onnx_nodes or {})}") from None
        source["compile_phases_s"] = {**source.pop("import_phases_s", {}),
                                      **{k: round(v, 3) for k, v in phases.items()}}
        return compiled, inputs, source

    def build(self, ctx: JobContext) -> BuildResult:
        import torch

        settings = self._settings(ctx)
        start = time.perf_counter()
        shared = _SharedCache(ctx, settings, compile_options(settings["mode"], self.config.inductor))
        with _fresh_cache_artifacts():
            shared.load()
            before = _cache_counters()
            compiled, _inputs, source = self._compile(ctx, settings)
            saved = torch.compiler.save_cache_artifacts()
        source["compile_cache_hits"] = {k: v - before.get(k, 0) for k, v in _cache_counters().items()
                                        if v - before.get(k, 0)}
        job_cache, cache_info = shared.job_artifact(saved)
        if job_cache is None:
            raise RuntimeError("torch.compile left no cache artifacts (is Inductor's FX graph cache disabled?)")
        artifact = ctx.workdir / ARTIFACT_NAME
        stored = pack_artifact(job_cache)
        artifact.write_bytes(stored)
        shared.publish()
        build_s = time.perf_counter() - start
        del compiled
        major, minor = torch.cuda.get_device_capability()
        info = {
            "build": self.config.resolved(), **settings, **source, "dtype": ctx.precision,
            "artifact": "torch.compiler.save_cache_artifacts() entries of this compile (inductor, aot_autograd, "
                        "autotune; pgo and precompile dropped), loaded with torch.compiler.load_cache_artifacts "
                        "before compiling the same model; AOTInductor packages not used (aoti_load_package "
                        "segfaulted with torch 2.11 on H200)",
            **cache_info, "artifact_bytes": {"cache": len(job_cache), "stored_zlib": len(stored)},
            "inductor_cache": shared.info,
            "runs_on": {"compute_capabilities": [f"{major}.{minor}"], "library": "torch",
                        "library_version": torch.__version__, "gpu_only": True},
        }
        return BuildResult(artifact=artifact, build_s=build_s, info=info,
                           media_type="application/vnd.pytorch.compile-cache")

    def load(self, artifact: Path, ctx: JobContext) -> Runner:
        import torch

        settings = self._settings(ctx)
        torch._dynamo.reset()  # drop the build's compiled code: the runner must come from the artifact
        gc.collect()  # free what the build left in reference cycles before taking the baseline
        baseline = torch.cuda.memory_allocated()  # what earlier jobs of this worker still hold
        start = time.perf_counter()
        loaded = torch.compiler.load_cache_artifacts(unpack_artifact(Path(artifact).read_bytes()))
        compiled, inputs, source = self._compile(ctx, settings)
        call = StaticCall(compiled, inputs, graph=settings["cudagraphs"])
        notes = {"load_s": round(time.perf_counter() - start, 3),
                 "cache_artifacts_loaded": {k: len(v) for k, v in loaded.artifacts.items()} if loaded else {},
                 "compile_mode": settings["mode"], "load_compile_phases_s": source.get("compile_phases_s")}
        torch.cuda.reset_peak_memory_stats()
        notes["memory_baseline_mb"] = baseline / 2**20
        return TorchRunner(call, ctx, notes)


class _SharedCache:
    """The build's use of the store's shared Inductor cache
    (inductor_cache.py): loaded before the compile, this compile's entries
    merged in after it. Never fails the build: a problem is recorded in
    ``info`` and the build compiles (or stays) cold."""

    def __init__(self, ctx: JobContext, settings: dict, options: dict):
        from workers.backends.torch import inductor_cache

        self.ctx, self.shared, self.learned = ctx, {}, {}
        self.identity, self.info = None, {"status": "off (no store)"}
        if ctx.store is not None:
            self.identity = inductor_cache.identity_for(ctx.device.device_class, ctx.device.index or 0,
                                                        ctx.model.sha256, ctx.precision, ctx.run_shapes,
                                                        settings["mode"], options, settings["tf32"])
            self.info = {"key": self.identity.key}

    def load(self) -> None:
        from workers.backends.torch import inductor_cache

        if self.identity is None:
            return
        clock = time.perf_counter()
        try:
            self.shared, fetched = inductor_cache.fetch(self.ctx.store, self.identity)
            if self.shared:
                from torch.compiler._cache import CacheArtifactManager

                CacheArtifactManager.populate_caches(self.shared)
        except Exception as exc:  # noqa: BLE001 - a shared cache is an optimisation
            self.shared, fetched = {}, {"status": f"load failed: {type(exc).__name__}: {exc}".splitlines()[0]}
        self.info.update(fetched, load_s=round(time.perf_counter() - clock, 3))

    def job_artifact(self, saved) -> tuple[bytes | None, dict]:
        """(this job's cache bytes: the KEPT entries of its compile, the
        record of what was kept and dropped). Where torch's bytes cannot be
        taken apart, the job keeps them whole and shares nothing."""
        if saved is None and not self.shared:
            return None, {}
        try:
            return self._kept_artifact(saved)
        except Exception as exc:  # noqa: BLE001 - the job artifact as torch wrote it is still valid
            self.learned = {}
            if saved is None:
                raise
            return saved[0], {"cache_artifacts": f"kept whole ({type(exc).__name__}: {exc})".splitlines()[0]}

    def _kept_artifact(self, saved) -> tuple[bytes, dict]:
        from workers.backends.torch import inductor_cache

        learned = inductor_cache.decode_artifacts(saved[0]) if saved is not None else {}
        self.learned, dropped = inductor_cache.kept(learned)
        record = {"cache_artifacts": inductor_cache.sizes(self.learned), "cache_artifacts_dropped": dropped}
        if "inductor" not in self.learned and self.shared:
            # A warm compile that recorded no FX-graph entry: the job keeps the shared entries it used.
            record["job_cache_from_shared"] = True
            return inductor_cache.encode_artifacts(inductor_cache.merge(self.shared, self.learned)), record
        raw = saved[0] if not dropped else inductor_cache.encode_artifacts(self.learned)
        return raw, record

    def publish(self) -> None:
        from workers.backends.torch import inductor_cache

        if self.identity is None or not self.learned:
            return
        clock = time.perf_counter()
        try:
            self.info["publish"] = inductor_cache.publish(self.ctx.store, self.identity, self.learned)
        except Exception as exc:  # noqa: BLE001 - a shared cache is an optimisation
            self.info["publish"] = {"status": f"failed: {type(exc).__name__}: {exc}".splitlines()[0]}
        self.info["publish_s"] = round(time.perf_counter() - clock, 3)


# The cache bytes are mostly generated kernel source and pickles: zlib makes
# them several times smaller in the store at a fraction of a second's cost.
_PACKED = b"EFZ1"


def pack_artifact(cache: bytes) -> bytes:
    import zlib

    return _PACKED + zlib.compress(cache, 6)


def unpack_artifact(stored: bytes) -> bytes:
    """The cache bytes (artifacts stored before packing are read as is)."""
    import zlib

    return zlib.decompress(stored[len(_PACKED):]) if stored.startswith(_PACKED) else stored


def _device_inputs(feeds: dict[str, np.ndarray], ctx: JobContext) -> list:
    import torch

    dtype = _dtype(ctx.precision)
    tensors = []
    for info in ctx.model.inputs:
        tensor = torch.from_numpy(np.ascontiguousarray(feeds[info.name])).to("cuda")
        tensors.append(tensor.to(dtype) if tensor.is_floating_point() else tensor)
    return tensors


_WARMUP_STREAMS: dict[int, object] = {}


def _warmup_stream():
    """One side stream per device for the whole worker, not one per job.
    torch keeps a cuBLAS workspace for every (handle, stream) pair it has
    used, so streams made per job add one each. With a new stream per job a
    worker's allocated GPU memory grew with every job on an H200 (112 to
    679 MiB over 18 jobs); these workspaces are the suspected cause."""
    import torch

    device = torch.cuda.current_device()
    if device not in _WARMUP_STREAMS:
        _WARMUP_STREAMS[device] = torch.cuda.Stream()
    return _WARMUP_STREAMS[device]


class StaticCall:
    """The compiled model bound to fixed device input tensors.

    With ``graph``, the call is captured once into a CUDA graph and every
    call is one replay (one ``cudaGraphLaunch``, no Python or dispatcher work
    in the timed iteration), reading ``inputs`` and writing ``outputs`` in
    place. If capture fails, calls run the compiled code directly and
    ``graph_error`` says why (trtexec likewise falls back with a warning).
    """

    def __init__(self, compiled, inputs: list, graph: bool):
        import torch

        self.compiled, self.inputs = compiled, inputs
        self.graph, self.graph_error = None, None
        with torch.no_grad():
            self.outputs = _as_list(compiled(*inputs))
            if graph:
                self._capture()

    def _capture(self) -> None:
        import torch

        # Warm up on a side stream first, as torch.cuda.graph's docs ask.
        side = _warmup_stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.compiled(*self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                outputs = _as_list(self.compiled(*self.inputs))
        except RuntimeError as exc:
            self.graph_error = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            torch.cuda.synchronize()
            return
        self.graph, self.outputs = graph, outputs

    def set_inputs(self, tensors: list) -> bool:
        """Copy ``tensors`` into the bound inputs; False if their shapes differ."""
        if [t.shape for t in tensors] != [t.shape for t in self.inputs]:
            return False
        for bound, new in zip(self.inputs, tensors):
            bound.copy_(new)
        return True

    def __call__(self) -> list:
        import torch

        if self.graph is not None:
            self.graph.replay()
        else:
            with torch.no_grad():
                self.outputs = _as_list(self.compiled(*self.inputs))
        return self.outputs

    def close(self) -> None:
        self.graph = self.compiled = None
        self.inputs = self.outputs = []


class TorchRunner(Runner):
    multi_stream = True  # measure.streams: one compiled replica and CUDA graph per stream

    def __init__(self, call: StaticCall, ctx: JobContext, notes: dict):
        self.call, self.ctx, self.notes = call, ctx, notes
        self.output_names = list(ctx.model.outputs)

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        tensors = _device_inputs(feeds, self.ctx)
        if self.call.set_inputs(tensors):
            outputs = self.call()
        else:  # other shapes than the bound ones: the compiled code itself
            with torch.no_grad():
                outputs = _as_list(self.call.compiled(*tensors))
        if len(outputs) != len(self.output_names):
            raise RuntimeError(f"the model returned {len(outputs)} outputs, its ONNX graph names {len(self.output_names)}")
        return {name: out.detach().float().cpu().numpy() for name, out in zip(self.output_names, outputs)}

    def measure(self, feeds: dict[str, np.ndarray], config: MeasureConfig) -> TimingResult:
        import torch

        from workers.backends.torch import profile

        call = self.call
        if not call.set_inputs(_device_inputs(feeds, self.ctx)):
            raise RuntimeError("measure() feeds do not have the shapes the model was compiled for")
        # One lane per stream through the one harness: streams 1 and N are timed alike.
        result = profile.measure_lanes(call, config, self.ctx.batch_size, self.ctx.device.index or 0)
        result.settings.update(self.notes, cuda_graph_error=call.graph_error)
        if call.graph_error:  # a graph was asked for; the compiled code runs without one
            result.settings["fallbacks"]["cuda_graph_fallback"] = f"CUDA graph capture failed: {call.graph_error}"
            result.flags.append("cuda_graph_fallback")
        # torch's own view, for reference; memory_mb is the worker's (same for every backend).
        result.settings["torch_peak_allocated_mb"] = (torch.cuda.max_memory_allocated() / 2**20
                                                      - self.notes["memory_baseline_mb"])
        return result

    def serving_instances(self, count: int) -> list:
        """One replica of the compiled call per instance (its own inputs, CUDA
        graph and stream), as ``measure.streams`` makes them."""
        import torch

        graphed = self.call.graph is not None
        replicas = [self.call] + [StaticCall(self.call.compiled, [t.clone() for t in self.call.inputs], graph=graphed)
                                  for _ in range(count - 1)]
        self._serving_replicas = replicas[1:]
        names = self.output_names

        def instance(replica: StaticCall):
            stream = torch.cuda.Stream()

            def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
                with torch.cuda.stream(stream):
                    if not replica.set_inputs(_device_inputs(feeds, self.ctx)):
                        raise RuntimeError("a served batch does not have the shapes the model was compiled for")
                    outputs = [o.detach().float().cpu() for o in replica()]  # waits for this stream only
                return dict(zip(names, (o.numpy() for o in outputs)))
            return run

        torch.cuda.synchronize()
        return [instance(r) for r in replicas]

    def profile_layers(self, feeds: dict[str, np.ndarray], config: MeasureConfig) -> dict:
        from workers.backends.torch import profile

        self.call.set_inputs(_device_inputs(feeds, self.ctx))
        return profile.profile_layers(self.call)

    def close(self) -> None:
        import torch

        for replica in getattr(self, "_serving_replicas", []):
            replica.close()
        self.call.close()
        torch._dynamo.reset()
        torch.cuda.empty_cache()
