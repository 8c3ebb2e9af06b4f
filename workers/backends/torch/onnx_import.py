"""ONNX -> torch module for one static shape, in a form torch.compile traces.

onnx2torch turns shape arguments (Reshape's target shape, Expand's shape,
Tile's repeats) into tensors read at run time; Dynamo cannot trace a tensor
used as a size. A job's shapes are static, so we (1) fix the input dims and
let ONNX Runtime's basic optimiser fold the Shape->Gather->Concat arithmetic
into constants, then (2) after conversion replace each such module whose
shape argument is now a constant buffer by a plain function call with the
shape as Python ints.
"""

from __future__ import annotations

import torch

from farm.errors import BackendUnsupported


def specialize(proto, shapes: dict[str, tuple[int, ...]]):
    """A copy of ``proto`` with ``shapes`` fixed and shape arithmetic folded."""
    import tempfile
    from pathlib import Path

    import onnx
    import onnxruntime as ort

    fixed = onnx.ModelProto()
    fixed.CopyFrom(proto)
    for value in fixed.graph.input:
        if value.name in shapes:
            for dim, size in zip(value.type.tensor_type.shape.dim, shapes[value.name]):
                dim.Clear()
                dim.dim_value = int(size)
    for value in fixed.graph.output:
        value.type.tensor_type.ClearField("shape")  # inferred again for the fixed inputs
    options = ort.SessionOptions()
    # Basic = constant folding and ONNX-only rewrites; higher levels emit
    # ONNX Runtime's own contrib ops, which onnx2torch does not know.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "folded.onnx"
        options.optimized_model_filepath = str(target)
        ort.InferenceSession(fixed.SerializeToString(), options, providers=["CPUExecutionProvider"])
        return onnx.load(str(target))


def _reshape(x, shape):
    # ONNX Reshape: 0 copies the input's dim (allowzero=0, what exporters write).
    return torch.reshape(x, [x.shape[i] if size == 0 else size for i, size in enumerate(shape)])


def _expand(x, shape):
    # ONNX Expand broadcasts both ways, unlike Tensor.expand.
    return torch.broadcast_to(x, torch.broadcast_shapes(x.shape, tuple(shape)))


def _tile(x, repeats):
    return x.repeat(tuple(repeats))


def _squeeze(x, axes):
    # Negative axes count from the end of the input; squeeze from the back so
    # earlier axes keep their index.
    for axis in sorted((a % x.dim() for a in axes), reverse=True):
        x = torch.squeeze(x, axis)
    return x


def _unsqueeze(x, axes):
    # Negative axes count from the end of the output.
    rank = x.dim() + len(axes)
    for axis in sorted(a % rank for a in axes):
        x = torch.unsqueeze(x, axis)
    return x


# onnx2torch module -> (function, extra keyword arguments read off the module)
_BAKED = {
    "OnnxReshape": (_reshape, lambda sub: {}),
    "OnnxExpand": (_expand, lambda sub: {}),
    "OnnxTile": (_tile, lambda sub: {}),
    "OnnxSqueezeDynamicAxes": (_squeeze, lambda sub: {}),
    "OnnxUnsqueezeDynamicAxes": (_unsqueeze, lambda sub: {}),
    "OnnxSplit13": (torch.split, lambda sub: {"dim": sub.axis}),
}


def bake_constant_shapes(module: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Replace shape-taking onnx2torch modules fed by constants with calls
    that take the shape as ints. Raises BackendUnsupported for those fed by
    run-time values (the graph is not static after folding)."""
    graph = module.graph
    for node in list(graph.nodes):
        if node.op != "call_module":
            continue
        sub = module.get_submodule(node.target)
        kind = type(sub).__name__
        if kind not in _BAKED or len(node.args) < 2 or node.args[1] is None:
            continue  # not shape-taking, or no shape argument (Squeeze of all unit dims)
        shape_node = node.args[1]
        if shape_node.op != "get_attr":
            raise BackendUnsupported(
                f"ONNX node {node.target!r} ({kind}) takes a shape computed at run time even for fixed "
                "input shapes; give the model as a torch.export program (.pt2) instead"
            )
        values = [int(v) for v in _attr(module, shape_node.target).reshape(-1).tolist()]
        function, keywords = _BAKED[kind]
        with graph.inserting_before(node):
            replacement = graph.call_function(function, (node.args[0], values), keywords(sub))
        node.replace_all_uses_with(replacement)
        graph.erase_node(node)
    graph.eliminate_dead_code()
    module.recompile()
    return module


def _attr(module, target: str):
    value = module
    for part in target.split("."):
        value = getattr(value, part)
    return value


def onnx_to_module(path, shapes: dict[str, tuple[int, ...]]):
    """Return (GraphModule, info) for the ONNX model at ``path`` at ``shapes``."""
    try:
        import onnx2torch
    except ImportError:
        raise BackendUnsupported(
            "the torch backend reads ONNX models through onnx2torch, which is not installed on this worker; "
            "install onnx2torch, or give the model as a torch.export program (.pt2, torch.export.save)"
        ) from None
    import onnx

    from workers.backends.torch.model_source import inline_identity_initializers

    proto = inline_identity_initializers(specialize(onnx.load(str(path)), shapes))
    try:
        module = onnx2torch.convert(proto)
    except Exception as exc:  # the converter raises bare KeyError/NotImplementedError per op
        raise BackendUnsupported(
            f"onnx2torch could not convert this ONNX model ({type(exc).__name__}: {exc}); give the model "
            "as a torch.export program (.pt2, torch.export.save) instead"
        ) from None
    from importlib import metadata

    info = {"source_format": "onnx", "converter": f"onnx2torch {metadata.version('onnx2torch')}",
            "specialized_to": {k: list(v) for k, v in shapes.items()}}
    return bake_constant_shapes(module), info
