"""Static ONNX -> torch import: one module for the job's fixed shapes.

onnx2torch keeps an ONNX graph's shape arithmetic (Shape -> Gather ->
Concat -> Reshape, Resize scales, Slice starts, Range limits, ...) as
tensors computed and read back at run time: a host sync per op on a GPU,
a Dynamo graph break (``fullgraph`` fails on ``Tensor.tolist()``) and no
single CUDA graph. A farm job's input shapes are static (the profile's opt
shape at the job's batch), so the import resolves all of it first:

1. fix every input dimension to the job's shape;
2. onnxscript's optimizer (maintained with ONNX, ships with torch's
   exporter): ONNX shape inference at those shapes, constant folding of
   every shape computation, ``If`` on a now-constant condition inlined,
   dead nodes dropped;
3. onnx2torch with the converters of static_converters.py, which read the
   now-constant shape inputs once into Python ints;
4. one eager forward through host_reads.scan: any op that still reads a
   tensor into Python fails the import, naming the ONNX node and op type.
"""

from __future__ import annotations

import contextlib
import sys
import time
import types

from farm.errors import BackendUnsupported

# onnxscript folds constants up to these sizes (elements); anchor grids of
# detectors and ConstantOfShape states are larger than its defaults.
FOLD_INPUT_LIMIT = 1 << 20
FOLD_OUTPUT_LIMIT = 1 << 22


def _torchvision_placeholder() -> types.ModuleType:
    """What onnx2torch gets for ``import torchvision`` when torchvision is
    unusable (a torchvision wheel built for another torch): onnx2torch needs
    it only for NonMaxSuppression and RoiAlign, which then fail clearly."""
    def missing(*_args, **_kwargs):
        raise BackendUnsupported("this ONNX op needs torchvision, which does not import on this worker")

    module, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
    ops.nms = ops.roi_align = ops.box_convert = missing
    module.ops = ops
    return module


def load_onnx2torch():
    """onnx2torch with the static converters registered."""
    try:
        import onnx2torch
    except ImportError as exc:
        if "onnx2torch" in str(exc) and not str(exc).startswith("cannot"):
            raise BackendUnsupported(
                "the torch backend reads ONNX models through onnx2torch, which is not installed on this worker; "
                "install onnx2torch, or give the model as a torch.export program (.pt2, torch.export.save)"
            ) from None
        onnx2torch = _import_without_torchvision()
    except RuntimeError:  # torchvision's operators fail to register against this torch
        onnx2torch = _import_without_torchvision()
    from workers.backends.torch import static_converters

    static_converters.register()
    return onnx2torch


def _import_without_torchvision():
    for name in [n for n in sys.modules if n == "onnx2torch" or n.startswith(("onnx2torch.", "torchvision"))]:
        del sys.modules[name]
    placeholder = _torchvision_placeholder()
    saved = {n: sys.modules.get(n) for n in ("torchvision", "torchvision.ops")}
    sys.modules.update({"torchvision": placeholder, "torchvision.ops": placeholder.ops})
    try:
        import onnx2torch
    finally:  # only onnx2torch keeps the placeholder; anyone else importing torchvision sees the real error
        for name, value in saved.items():
            if value is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = value
    return onnx2torch


def fix_input_shapes(proto, shapes: dict[str, tuple[int, ...]]):
    """A copy of ``proto`` whose inputs have the job's concrete shapes and
    whose other shapes are left to inference."""
    import onnx

    fixed = onnx.ModelProto()
    fixed.CopyFrom(proto)
    graph = fixed.graph
    for value in graph.input:
        if value.name in shapes:
            shape = value.type.tensor_type.shape
            shape.ClearField("dim")
            for size in shapes[value.name]:
                shape.dim.add().dim_value = int(size)
    for value in graph.output:
        value.type.tensor_type.ClearField("shape")
    del graph.value_info[:]
    return fixed


def static_model(proto, shapes: dict[str, tuple[int, ...]]):
    """``proto`` at ``shapes`` with every shape computation folded."""
    import onnx
    import onnx_ir as ir
    import onnxscript.optimizer

    model = ir.serde.deserialize_model(fix_input_shapes(proto, shapes))
    onnxscript.optimizer.optimize_ir(model, num_iterations=3, input_size_limit=FOLD_INPUT_LIMIT,
                                     output_size_limit=FOLD_OUTPUT_LIMIT, should_fold=_fold_shape_ops)
    return onnx.shape_inference.infer_shapes(ir.serde.serialize_model(model))


def _fold_shape_ops(node) -> bool | None:
    """onnxscript keeps ConstantOfShape unfolded (to keep files small); here
    its output is often a shape argument (silero VAD's Pad), and folding it
    is what makes the shape static. Other ops: onnxscript's default rules."""
    return True if node.op_type == "ConstantOfShape" and node.domain in ("", "ai.onnx") else None


def onnx_node_names(proto) -> dict[str, tuple[str, str]]:
    """onnx2torch's module name for each node -> (ONNX node name, op type)."""
    from onnx2torch.onnx_graph import OnnxGraph

    return {name: (node.name or name, node.operation_type) for name, node in OnnxGraph(proto.graph).nodes.items()}


def convert(proto):
    """onnx2torch.convert with failures naming the ONNX node and op type."""
    from workers.backends.torch.static_converters import RuntimeShapeInput

    onnx2torch = load_onnx2torch()
    try:
        return onnx2torch.convert(proto)
    except RuntimeShapeInput as exc:
        raise BackendUnsupported(f"static import failed: {exc}") from None
    except Exception as exc:  # the converter raises bare KeyError/NotImplementedError per op
        node = _failing_node(proto, exc)
        raise BackendUnsupported(f"onnx2torch could not convert {node}: {type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")) from None


def _failing_node(proto, exc) -> str:
    """The first node onnx2torch has no converter for, else the model."""
    from onnx2torch.node_converters import get_converter

    opsets = {o.domain: o.version for o in proto.opset_import}
    for node in proto.graph.node:
        try:
            get_converter(operation_type=node.op_type, version=opsets.get(node.domain, 1), domain=node.domain)
        except NotImplementedError:
            return f"ONNX node {node.name!r} ({node.op_type}, opset {opsets.get(node.domain, 1)})"
    return "this ONNX model"


def onnx_to_module(path, shapes: dict[str, tuple[int, ...]], example_inputs=None):
    """(GraphModule, info) for the ONNX model at ``path`` at ``shapes``.

    ``example_inputs`` (tensors in the graph's input order): run once to
    prove no op reads a tensor into Python; the info records the count."""
    import onnx

    from workers.backends.torch.model_source import inline_identity_initializers

    timings = {}
    start = time.perf_counter()
    proto = onnx.load(str(path))
    original_nodes = len(proto.graph.node)
    try:
        proto = inline_identity_initializers(static_model(proto, shapes))
    except Exception as exc:  # noqa: BLE001 - the optimizer raises many kinds; the job needs one line
        raise BackendUnsupported(f"static import: constant folding at {shapes} failed: "
                                 f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    timings["fold_s"] = time.perf_counter() - start
    start = time.perf_counter()
    module = convert(proto)
    timings["convert_s"] = time.perf_counter() - start
    info = {"source_format": "onnx", "converter": f"onnx2torch {_version('onnx2torch')}",
            "static_import": f"onnxscript {_version('onnxscript')} optimizer + static converters",
            "specialized_to": {k: list(v) for k, v in shapes.items()},
            "onnx_nodes": {"original": original_nodes, "static": len(proto.graph.node)}}
    if example_inputs is not None:
        start = time.perf_counter()
        check_no_host_reads(module, example_inputs, onnx_node_names(proto))
        timings["host_read_scan_s"] = time.perf_counter() - start
        info["host_reads"] = 0
    info["import_phases_s"] = {k: round(v, 3) for k, v in timings.items()}
    module.onnx_nodes = onnx_node_names(proto)
    return module, info


def check_no_host_reads(module, inputs, onnx_nodes) -> None:
    from workers.backends.torch.host_reads import scan

    with contextlib.suppress(AttributeError):
        module = module.eval()
    try:
        _outputs, reads = scan(module, inputs, onnx_nodes)
    except BackendUnsupported:
        raise
    except Exception as exc:
        raise BackendUnsupported(f"the converted model failed its first run: {_describe_run_error(exc, onnx_nodes)}"
                                 ) from None
    if reads.total:
        raise BackendUnsupported(f"static import left {reads.total} read(s) of a tensor into Python (host syncs, "
                                 f"no single CUDA graph): {reads.describe()}")


def _describe_run_error(exc, onnx_nodes) -> str:
    text = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    target = getattr(exc, "fx_target", None)
    if target in onnx_nodes:
        name, op = onnx_nodes[target]
        return f"ONNX node {name!r} ({op}): {text}"
    return text


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"
