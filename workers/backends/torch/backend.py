"""PyTorch backend: torch.compile with Inductor for the worker's GPU.

Build = read the model (torch.export ``.pt2``, or ONNX through onnx2torch),
cast it to the job's precision, compile it with Inductor (``max-autotune``
by default) at the job's static shapes, and keep what the compile produced
as the artifact: ``torch.compiler.save_cache_artifacts()`` bytes (Inductor
FX-graph, AOTAutograd and autotuning caches). An AOTInductor package would
be self-contained, but ``aoti_load_package`` segfaulted with torch 2.11 on
an H200, while the cache artifact cut the next compile from 19.6 s to 4.5 s.

Load = ``load_cache_artifacts`` + the same compile (now served from the
cache). Measure = the CUDA-event harness around the compiled call on
torch's current stream; with cudagraphs on (the ``max-autotune`` default),
torch captures and replays the graph itself, since capture needs its
caching allocator in capture mode.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np

from farm.errors import BackendUnsupported
from farm.spec import MeasureConfig
from workers.backends.base import Backend, BuildResult, JobContext, Runner, TimingResult
from workers.inputs import make_feeds

DEFAULT_MODE = "max-autotune"
ARTIFACT_NAME = "torch-compile-cache.bin"
WARM_CALLS = 3  # compile, cudagraph-tree warm-up, record: later calls replay
# mode -> (same mode with cudagraphs, without)
_GRAPH_MODES = {
    "max-autotune": ("max-autotune", "max-autotune-no-cudagraphs"),
    "max-autotune-no-cudagraphs": ("max-autotune", "max-autotune-no-cudagraphs"),
    "reduce-overhead": ("reduce-overhead", "default"),
    "default": ("reduce-overhead", "default"),
}


def resolve_mode(mode: str | None, cuda_graph: bool | None) -> tuple[str, bool]:
    """(torch.compile mode, uses cudagraphs) from the build knob and the
    job's ``measure.cuda_graph`` (None keeps the mode's own choice)."""
    mode = mode or DEFAULT_MODE
    if mode not in _GRAPH_MODES:
        raise BackendUnsupported(f"unknown torch.compile mode {mode!r} (allowed: {', '.join(_GRAPH_MODES)})")
    with_graphs, without = _GRAPH_MODES[mode]
    if cuda_graph is not None:
        mode = with_graphs if cuda_graph else without
    return mode, mode == with_graphs


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


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


class TorchBackend(Backend):
    def version(self) -> str:
        import torch

        return torch.__version__

    def _settings(self, ctx: JobContext) -> dict:
        if ctx.precision not in self.config.precisions:
            raise BackendUnsupported(f"torch cannot run {ctx.precision}; it supports {', '.join(self.config.precisions)}")
        if ctx.device.kind != "gpu":
            raise BackendUnsupported("the torch backend measures on NVIDIA GPUs only")
        mode, graphs = resolve_mode(self.config.mode, ctx.measure.cuda_graph)
        fullgraph = self.config.fullgraph is not False
        return {"mode": mode, "cudagraphs": graphs, "fullgraph": fullgraph, "tf32": bool(self.config.tf32)}

    def _compile(self, ctx: JobContext, settings: dict):
        """(compiled callable, device inputs, source info), warmed up."""
        import torch

        from workers.backends.torch.model_source import load_module

        torch.cuda.set_device(ctx.device.index or 0)
        _set_numerics(settings["tf32"])
        module, source = load_module(ctx.model_path, ctx.run_shapes)
        module = module.eval().requires_grad_(False).to(device="cuda", dtype=_dtype(ctx.precision))
        inputs = _device_inputs(make_feeds(ctx.model, ctx.run_shapes, seed=0), ctx)
        compiled = torch.compile(module, fullgraph=settings["fullgraph"], dynamic=False,
                                 options=compile_options(settings["mode"], self.config.inductor))
        try:
            with torch.no_grad():
                for _ in range(WARM_CALLS):
                    torch.compiler.cudagraph_mark_step_begin()
                    compiled(*inputs)
            torch.cuda.synchronize()
        except torch.cuda.OutOfMemoryError as exc:
            raise BackendUnsupported(f"out of GPU memory at batch {ctx.batch_size}: {exc}".splitlines()[0]) from None
        return compiled, inputs, source

    def build(self, ctx: JobContext) -> BuildResult:
        import torch

        settings = self._settings(ctx)
        start = time.perf_counter()
        with _fresh_cache_artifacts():
            compiled, _inputs, source = self._compile(ctx, settings)
            saved = torch.compiler.save_cache_artifacts()
        if saved is None:
            raise RuntimeError("torch.compile left no cache artifacts (is Inductor's FX graph cache disabled?)")
        artifact = ctx.workdir / ARTIFACT_NAME
        artifact.write_bytes(saved[0])
        build_s = time.perf_counter() - start
        del compiled
        major, minor = torch.cuda.get_device_capability()
        info = {
            "build": self.config.resolved(), **settings, **source, "dtype": ctx.precision,
            "artifact": "torch.compiler.save_cache_artifacts() bytes: Inductor/AOTAutograd/autotune caches, "
                        "loaded with torch.compiler.load_cache_artifacts before compiling the same model; "
                        "AOTInductor packages not used (aoti_load_package segfaulted with torch 2.11 on H200)",
            "cache_artifacts": {k: len(v) for k, v in saved[1].artifacts.items()},
            "runs_on": {"compute_capabilities": [f"{major}.{minor}"], "library": "torch",
                        "library_version": torch.__version__, "gpu_only": True},
        }
        return BuildResult(artifact=artifact, build_s=build_s, info=info,
                           media_type="application/vnd.pytorch.compile-cache")

    def load(self, artifact: Path, ctx: JobContext) -> Runner:
        import torch

        settings = self._settings(ctx)
        torch._dynamo.reset()  # drop the build's compiled code: the runner must come from the artifact
        start = time.perf_counter()
        loaded = torch.compiler.load_cache_artifacts(Path(artifact).read_bytes())
        compiled, inputs, _source = self._compile(ctx, settings)
        notes = {"load_s": round(time.perf_counter() - start, 3),
                 "cache_artifacts_loaded": {k: len(v) for k, v in loaded.artifacts.items()} if loaded else {},
                 "compile_mode": settings["mode"]}
        torch.cuda.reset_peak_memory_stats()
        return TorchRunner(compiled, ctx, settings, notes)


def _device_inputs(feeds: dict[str, np.ndarray], ctx: JobContext) -> list:
    import torch

    dtype = _dtype(ctx.precision)
    tensors = []
    for info in ctx.model.inputs:
        tensor = torch.from_numpy(np.ascontiguousarray(feeds[info.name])).to("cuda")
        tensors.append(tensor.to(dtype) if tensor.is_floating_point() else tensor)
    return tensors


class TorchRunner(Runner):
    def __init__(self, compiled, ctx: JobContext, settings: dict, notes: dict):
        self.compiled, self.ctx, self.settings, self.notes = compiled, ctx, settings, notes
        self.output_names = list(ctx.model.outputs)

    def _call(self, inputs: list) -> list:
        import torch

        # Tells cudagraph trees a new inference begins, so the previous
        # outputs' memory may be reused.
        torch.compiler.cudagraph_mark_step_begin()
        return _as_list(self.compiled(*inputs))

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self._call(_device_inputs(feeds, self.ctx))
        if len(outputs) != len(self.output_names):
            raise RuntimeError(f"the model returned {len(outputs)} outputs, its ONNX graph names {len(self.output_names)}")
        return {name: out.detach().float().cpu().numpy() for name, out in zip(self.output_names, outputs)}

    def measure(self, feeds: dict[str, np.ndarray], config: MeasureConfig) -> TimingResult:
        import torch

        from workers.timing.cuda import measure_enqueue

        inputs = _device_inputs(feeds, self.ctx)
        staged_in = [t.cpu().pin_memory() for t in inputs]
        latest = self._call(inputs)
        staged_out = [torch.empty_like(o, device="cpu").pin_memory() for o in latest]

        def enqueue(_stream: int) -> None:
            latest[:] = self._call(inputs)

        def h2d(_stream: int) -> None:
            for device, host in zip(inputs, staged_in):
                device.copy_(host, non_blocking=True)

        def d2h(_stream: int) -> None:
            for host, device in zip(staged_out, latest):
                host.copy_(device, non_blocking=True)

        # torch launches on its current stream; the harness times that stream.
        stream = torch.cuda.current_stream().cuda_stream
        result = measure_enqueue(enqueue, config, batch_size=self.ctx.batch_size, inputs_h2d=h2d, outputs_d2h=d2h,
                                 stream=stream, capture_graph=False, device=self.ctx.device.index or 0)
        result.settings.update(self.notes, cuda_graph=self.settings["cudagraphs"],
                               cuda_graph_by="torch.compile cudagraph trees" if self.settings["cudagraphs"] else None)
        result.settings["device_memory_in_use_mb"] = result.memory_mb
        result.memory_mb = torch.cuda.max_memory_allocated() / 2**20  # this model's peak, not the whole GPU
        return result

    def close(self) -> None:
        import torch

        self.compiled = None
        torch._dynamo.reset()
        torch.cuda.empty_cache()
