"""ONNX Runtime (CPU) backend.

Build = apply the precision (fp32 as is; int8 by static Q/DQ quantization
with calibration inputs), optimise at the highest graph level and save the
optimised model as the artifact. Measure = host-clock timing of ``run``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from farm.errors import BackendUnsupported
from farm.spec import MeasureConfig
from workers.backends.base import Backend, BuildResult, JobContext, Runner, TimingResult
from workers.timing.host import time_host

_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
           "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


# ONNX Runtime's status codes that mean "this model is not for this runtime":
# a missing kernel (an operator, or an operator at this type), an invalid or
# unknown graph. FAIL and RUNTIME_EXCEPTION stay failures.
_REFUSING = ("NOT_IMPLEMENTED", "INVALID_GRAPH", "NO_MODEL", "INVALID_PROTOBUF")


class OnnxRuntimeBackend(Backend):
    @classmethod
    def classify(cls, exc: BaseException, precision: str) -> str | None:
        text = " ".join(str(exc).split())
        if type(exc).__module__.startswith("onnxruntime") and any(f": {code} :" in text for code in _REFUSING):
            from workers.refusals import one_line

            detail = text.split(" : ", 3)[-1] if text.count(" : ") >= 3 else text
            return one_line(f"ONNX Runtime cannot run the model at {precision}: {detail}")
        return super().classify(exc, precision)

    def version(self) -> str:
        import onnxruntime

        return onnxruntime.__version__

    def _session_options(self, optimized_path: Path | None = None):
        import onnxruntime as ort

        cfg = self.config
        options = ort.SessionOptions()
        level = _LEVELS.get(cfg.graph_optimization_level or "all")
        if level is None:
            raise BackendUnsupported(f"unknown graph_optimization_level {cfg.graph_optimization_level!r}")
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        if cfg.intra_op_num_threads is not None:
            options.intra_op_num_threads = cfg.intra_op_num_threads
        if cfg.inter_op_num_threads is not None:
            options.inter_op_num_threads = cfg.inter_op_num_threads
        if cfg.execution_mode == "parallel":
            options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        if optimized_path is not None:
            options.optimized_model_filepath = str(optimized_path)
        return options

    def build(self, ctx: JobContext) -> BuildResult:
        import onnxruntime as ort

        # What it can run is decided by its capabilities (farm/capabilities.py), before this is called.
        start = time.perf_counter()
        source = ctx.model_path
        info: dict = {"build": self.config.resolved(), "graph_optimization_level": self.config.graph_optimization_level or "all"}
        if ctx.precision == "int8":
            source, info["quantization"], info["fallbacks"] = self._quantize(ctx)
        elif ctx.precision == "model":
            from farm.quantized import quantized_node_counts

            info["model_types"] = {"quantized_ops": quantized_node_counts(ctx.model_path)}  # run as given
        optimized = ctx.workdir / "model.optimized.onnx"
        # Creating the session runs the optimiser and writes the optimised graph.
        ort.InferenceSession(str(source), self._session_options(optimized), providers=["CPUExecutionProvider"])
        _inline_external_data(optimized, Path(source))
        _drop_ignored_qdq_axis(optimized)
        return BuildResult(artifact=optimized, build_s=time.perf_counter() - start, info=info,
                           media_type="application/onnx")

    def _quantize(self, ctx: JobContext) -> tuple[Path, dict, dict]:
        """int8 by the configured recipe and calibration method; what was
        done is recorded (recipe, types, ops, calibration rows, inserted ops)."""
        from workers.precision.int8 import NothingQuantized, model_fallbacks, quantize_int8
        from workers.precision.recipes import quantized_node_counts, recipe

        how = recipe(self.config.quantization or "onnxruntime", self.config.quant_format)
        method = ctx.calibration.get("method", "minmax")
        asked = self.config.per_channel is not False
        feeds = list(ctx.calibration_feeds())
        try:
            source = quantize_int8(ctx.model_path, ctx.workdir / "model.int8.onnx", feeds, per_channel=asked,
                                   method=method, how=how)
        except NothingQuantized as exc:
            raise BackendUnsupported(str(exc)) from None
        fallbacks = model_fallbacks(source)
        rows = (ctx.rows or {}).get("calibration") if ctx.data is not None else None
        quantization = {**how.describe(), "calibration": method,
                        "samples": (rows[1] - rows[0]) if rows else len(feeds),
                        "rows": rows, "data": "user" if ctx.data is not None else "synthetic",
                        "per_channel": asked and "per_tensor_fallback" not in fallbacks,
                        "inserted": quantized_node_counts(source)}
        return source, quantization, fallbacks

    def load(self, artifact: Path, ctx: JobContext) -> Runner:
        import onnxruntime as ort

        options = self._session_options()
        # The artifact is already optimised; don't redo the work at load time.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(str(artifact), options, providers=["CPUExecutionProvider"])
        return OnnxRuntimeRunner(session, ctx.batch_size)


def _inline_external_data(optimized: Path, source: Path) -> None:
    """The artifact is one file: ONNX Runtime's optimised model still names the
    source's external data files (farm/model_bundle.py) by their locations
    beside the source; their tensors are read in (each location checked to
    lie in the source's folder) and saved into the artifact."""
    import onnx

    from farm.model_bundle import check_location, external_locations

    proto = onnx.load(str(optimized), load_external_data=False)
    locations = external_locations(proto)
    if not locations:
        return
    for location in locations:
        check_location(source, location)
    onnx.load_external_data_for_model(proto, str(source.parent))
    try:
        onnx.save(proto, str(optimized))
    except ValueError as exc:  # protobuf's 2 GB limit for one file
        raise BackendUnsupported(f"the optimised model with its weights does not fit one ONNX file ({exc})"
                                 .splitlines()[0]) from None


_QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def _drop_ignored_qdq_axis(optimized: Path) -> None:
    """ONNX Runtime's optimiser, propagating Q/DQ pairs over a Reshape, writes
    ``axis`` on per-tensor (scalar scale) Q/DQ nodes. Below opset 13 those
    ops have no ``axis`` and the saved model no longer loads ("Unrecognized
    attribute: axis"), although the model it came from ran. For a scalar
    scale the attribute means nothing (ONNX: axis is ignored for per-tensor
    quantization), so it is removed; a per-axis scale at opset < 13 is left
    as it is and refused at load, as it should be."""
    import onnx

    proto = onnx.load(str(optimized))
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None or opset >= 13:
        return
    if _strip_scalar_axis(proto.graph, {}):
        onnx.save(proto, str(optimized))


def _strip_scalar_axis(graph, outer_ranks: dict[str, int]) -> bool:
    """Removes ``axis`` from this graph's (and its subgraphs') Q/DQ nodes whose
    scale is a known scalar (an initializer or a Constant of rank 0)."""
    import onnx

    ranks = dict(outer_ranks)
    ranks.update({init.name: len(init.dims) for init in graph.initializer})
    for node in graph.node:
        if node.op_type == "Constant":
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None:
                ranks[node.output[0]] = len(value.dims)
    changed = False
    for node in graph.node:
        if node.op_type in _QDQ_OPS and node.domain in ("", "ai.onnx") and len(node.input) > 1 \
                and ranks.get(node.input[1]) == 0:
            kept = [a for a in node.attribute if a.name != "axis"]
            if len(kept) != len(node.attribute):
                del node.attribute[:]
                node.attribute.extend(kept)
                changed = True
        for attr in node.attribute:
            subgraphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
            for sub in subgraphs:
                changed = _strip_scalar_axis(sub, ranks) or changed
    return changed


class OnnxRuntimeRunner(Runner):
    def __init__(self, session, batch_size: int):
        self.session = session
        self.batch_size = batch_size
        self.output_names = [o.name for o in session.get_outputs()]

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.session.run(self.output_names, feeds)
        return dict(zip(self.output_names, values))

    def serving_instances(self, count: int) -> list:
        # InferenceSession.run is thread-safe: N instances are N concurrent runs of the one session.
        return [self.infer] * count

    def measure(self, feeds: dict[str, np.ndarray], config: MeasureConfig) -> TimingResult:
        from workers.timing import contention

        before = contention.snapshot()
        samples = time_host(lambda: self.session.run(self.output_names, feeds), config)
        load = contention.assess(before, contention.snapshot())
        return TimingResult(samples_ms=samples, settings={"clock": "host perf_counter", "sync": "blocking"},
                            telemetry={"host_load": load}, flags=[contention.FLAG] if load["contended"] else [])
