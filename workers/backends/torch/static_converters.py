"""onnx2torch converters that take shape arguments as Python constants.

onnx2torch's own modules for these ops receive their shape-like inputs
(Reshape's shape, Slice's starts/ends, Resize's scales, Pad's pads, ...) as
tensors and read them into Python at every call (``tolist()``), which is a
host sync on a GPU and a graph break for Dynamo. After the static import
has fixed the input shapes and folded the shape arithmetic
(workers/backends/torch/onnx_import.py), those inputs are initializers, so
these converters read them once, at conversion, and build modules whose
forward takes only the data tensor. A shape input that is still computed
at run time raises ``RuntimeShapeInput`` naming the ONNX node.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# INT64_MAX and friends: ONNX's "to the end" for Slice.
_BIG = 2**62


class RuntimeShapeInput(ValueError):
    """A shape-like input of an ONNX node is not a constant after folding."""

    def __init__(self, node, input_name: str):
        self.node_name, self.op_type = node.name or node.unique_name, node.operation_type
        super().__init__(f"ONNX node {self.node_name!r} ({self.op_type}): input {input_name!r} is computed at run "
                         "time even with the job's input shapes fixed (data-dependent shape)")


def _const(node, graph, index: int, *, optional: bool = True):
    """The node's ``index``-th input as a torch tensor, None when absent."""
    from onnx2torch.utils.common import get_const_value

    names = node.input_values
    if index >= len(names) or not names[index]:
        if optional:
            return None
        raise RuntimeShapeInput(node, f"#{index}")
    try:
        value = get_const_value(names[index], graph)
    except KeyError:
        raise RuntimeShapeInput(node, names[index]) from None
    return value if isinstance(value, torch.Tensor) else torch.tensor(value)


def _ints(tensor) -> list[int] | None:
    return None if tensor is None else [int(v) for v in tensor.reshape(-1).tolist()]


def _floats(tensor) -> list[float] | None:
    return None if tensor is None else [float(v) for v in tensor.reshape(-1).tolist()]


def _result(node, module: nn.Module, data_inputs: int = 1):
    from onnx2torch.utils.common import OnnxMapping, OperationConverterResult

    return OperationConverterResult(torch_module=module, onnx_mapping=OnnxMapping(
        inputs=tuple(node.input_values[:data_inputs]), outputs=tuple(node.output_values)))


class StaticReshape(nn.Module):
    def __init__(self, shape: list[int], allowzero: bool):
        super().__init__()
        self.shape, self.allowzero = tuple(shape), allowzero

    def forward(self, x):
        # ONNX Reshape: 0 copies the input's dim unless allowzero.
        shape = self.shape if self.allowzero else [x.shape[i] if s == 0 else s for i, s in enumerate(self.shape)]
        return torch.reshape(x, shape)


class StaticExpand(nn.Module):
    def __init__(self, shape: list[int]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        # ONNX Expand broadcasts both ways, unlike Tensor.expand.
        return torch.broadcast_to(x, torch.broadcast_shapes(x.shape, self.shape))


class StaticTile(nn.Module):
    def __init__(self, repeats: list[int]):
        super().__init__()
        self.repeats = tuple(repeats)

    def forward(self, x):
        return x.repeat(self.repeats)


class StaticSqueeze(nn.Module):
    def __init__(self, axes: list[int] | None):
        super().__init__()
        self.axes = axes

    def forward(self, x):
        if self.axes is None:
            return torch.squeeze(x)
        return torch.squeeze(x, tuple(a % x.dim() for a in self.axes))


class StaticUnsqueeze(nn.Module):
    def __init__(self, axes: list[int]):
        super().__init__()
        self.axes = axes

    def forward(self, x):
        rank = x.dim() + len(self.axes)  # negative axes count from the end of the output
        for axis in sorted(a % rank for a in self.axes):
            x = torch.unsqueeze(x, axis)
        return x


class StaticSplit(nn.Module):
    def __init__(self, axis: int, sizes: list[int] | None, parts: int):
        super().__init__()
        self.axis, self.sizes, self.parts = axis, sizes, parts

    def forward(self, x):
        sizes = self.sizes
        if sizes is None:  # equal parts, the last one smaller (ONNX Split-18)
            dim = x.shape[self.axis]
            chunk = math.ceil(dim / self.parts)
            sizes = [chunk] * (self.parts - 1) + [dim - chunk * (self.parts - 1)]
        return tuple(torch.split(x, sizes, dim=self.axis))


class StaticSlice(nn.Module):
    def __init__(self, starts: list[int], ends: list[int], axes: list[int] | None, steps: list[int] | None):
        super().__init__()
        axes = axes if axes is not None else list(range(len(starts)))
        steps = steps if steps is not None else [1] * len(starts)
        self.parts = list(zip(axes, starts, ends, steps))

    def forward(self, x):
        for axis, start, end, step in self.parts:
            axis %= x.dim()
            dim = x.shape[axis]
            if step > 0:
                start, end = _clamp(start, dim, 0, dim), _clamp(end, dim, 0, dim)
                index = [slice(None)] * axis + [slice(start, max(start, end), step)]
                x = x[tuple(index)]
            else:  # ONNX counts down from start; flip, then slice forward
                start, end = _clamp(start, dim, 0, dim - 1), _clamp(end, dim, -1, dim - 1)
                flipped_start, flipped_end = dim - 1 - start, dim - 1 - end
                index = [slice(None)] * axis + [slice(flipped_start, max(flipped_start, flipped_end), -step)]
                x = torch.flip(x, (axis,))[tuple(index)]
        return x


def _clamp(value: int, dim: int, low: int, high: int) -> int:
    value = max(min(value, _BIG), -_BIG)
    value = value + dim if value < 0 else value
    return max(low, min(value, high))


class StaticResize(nn.Module):
    def __init__(self, mode: str, align_corners, scales: list[float] | None, sizes: list[int] | None):
        super().__init__()
        self.mode, self.align_corners = mode, align_corners
        self.scales, self.sizes = scales, sizes

    def forward(self, x):
        if self.sizes is not None:
            return F.interpolate(x, size=tuple(self.sizes[2:]), mode=self.mode, align_corners=self.align_corners)
        # ONNX maps coordinates with the given scale, not out/in: recompute_scale_factor=False.
        return F.interpolate(x, scale_factor=tuple(self.scales[2:]), mode=self.mode,
                             align_corners=self.align_corners, recompute_scale_factor=False)


class StaticPad(nn.Module):
    def __init__(self, by_axis: dict[int, tuple[int, int]], mode: str, value: float):
        super().__init__()
        self.by_axis, self.mode, self.value = by_axis, mode, value

    def forward(self, x):
        # torch.nn.functional.pad: (begin, end) pairs from the last axis back; leading zero pairs dropped.
        pads = [p for axis in range(x.dim() - 1, -1, -1) for p in self.by_axis.get(axis, (0, 0))]
        while len(pads) > 2 and pads[-2:] == [0, 0]:
            pads = pads[:-2]
        if self.mode == "constant":
            return F.pad(x, pads, mode="constant", value=self.value)
        return F.pad(x, pads, mode=self.mode)


class Constant(nn.Module):
    """A tensor the static import computed at conversion (Range,
    ConstantOfShape with constant inputs); a buffer, so it follows the
    module to the device."""

    def __init__(self, value: torch.Tensor):
        super().__init__()
        self.register_buffer("value", value)

    def forward(self):
        return self.value


class GlobalMaxPool(nn.Module):
    def forward(self, x):
        return torch.amax(x, dim=tuple(range(2, x.dim())), keepdim=True)


class UnrolledLSTM(nn.Module):
    """ONNX LSTM (default activations, no peepholes, full-length
    sequences) as plain tensor ops: the input projection for all steps in
    one matmul, then one fused gate matmul per step, unrolled over the
    static sequence length. Plain ops keep Dynamo's ``fullgraph`` (it
    refuses torch's RNN modules unless ``allow_rnn``) and let Inductor fuse
    each step's gate arithmetic."""

    def __init__(self, w, r, b, hidden: int, directions: int, reverse_only: bool, layout: int):
        super().__init__()
        # ONNX packs the gates as (i, o, f, c).
        self.register_buffer("w", w)  # [dirs, 4H, in]
        self.register_buffer("r", r)  # [dirs, 4H, H]
        self.register_buffer("b", b)  # [dirs, 4H]: Wb + Rb
        self.hidden, self.directions, self.reverse_only, self.layout = hidden, directions, reverse_only, layout

    def forward(self, x, initial_h=None, initial_c=None):
        if self.layout:  # [batch, seq, in] -> [seq, batch, in]
            x = x.transpose(0, 1)
            initial_h = None if initial_h is None else initial_h.transpose(0, 1)
            initial_c = None if initial_c is None else initial_c.transpose(0, 1)
        steps, batch = x.shape[0], x.shape[1]
        ys, hs, cs = [], [], []
        for d in range(self.directions):
            h = x.new_zeros(batch, self.hidden) if initial_h is None else initial_h[d]
            c = x.new_zeros(batch, self.hidden) if initial_c is None else initial_c[d]
            projected = torch.matmul(x, self.w[d].t()) + self.b[d]  # [seq, batch, 4H]
            backwards = self.reverse_only or d == 1
            out = [None] * steps
            for t in (range(steps - 1, -1, -1) if backwards else range(steps)):
                gates = projected[t] + torch.matmul(h, self.r[d].t())
                i, o, f, g = gates.chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                out[t] = h
            ys.append(torch.stack(out))
            hs.append(h)
            cs.append(c)
        y, y_h, y_c = torch.stack(ys, dim=1), torch.stack(hs), torch.stack(cs)  # [seq, dirs, batch, H]
        if self.layout:
            y, y_h, y_c = y.permute(2, 0, 1, 3), y_h.transpose(0, 1), y_c.transpose(0, 1)
        return y, y_h, y_c


class ConstantGather(nn.Module):
    """ONNX Gather with constant indices: a scalar index is a Python int
    (``select``); an index array a buffer (``index_select``), so neither
    reads a tensor into Python (onnx2torch indexes with the index tensor,
    which reads a 0-d one back through ``__index__``)."""

    def __init__(self, axis: int, indices: torch.Tensor):
        super().__init__()
        self.axis = axis
        self.scalar = int(indices) if indices.dim() == 0 else None
        self.register_buffer("indices", indices.to(torch.int64))

    def forward(self, x):
        axis = self.axis % x.dim()
        dim = x.shape[axis]
        if self.scalar is not None:
            return x.select(axis, self.scalar % dim)
        flat = torch.remainder(self.indices.reshape(-1), dim)  # negative indices count from the end
        picked = torch.index_select(x, axis, flat)
        return picked.reshape(*x.shape[:axis], *self.indices.shape, *x.shape[axis + 1:])


class CastToModelFloat(nn.Module):
    """ONNX Cast to float32, following the module's precision: a model
    cast to fp16/bf16 (the job's precision) computes in that type, and a
    float32 tensor made by a Cast (Magika's one-hot bytes) would meet fp16
    weights in the next MatMul. The empty buffer's dtype is the module's
    float type after ``module.to(dtype)``."""

    def __init__(self):
        super().__init__()
        self.register_buffer("like", torch.empty(0, dtype=torch.float32))

    def forward(self, x):
        return x.to(self.like.dtype)


class FoldedBatchNorm(nn.Module):
    """Inference BatchNormalization as one scale and shift per channel,
    computed in float32 at conversion. Kept as mean/var, a reduced-precision
    job overflows: PP-OCRv4's detector has a running variance of 9.8e7,
    past fp16's 65504, and its output became all zeros in fp16."""

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor):
        super().__init__()
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)

    def forward(self, x):
        view = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.scale.reshape(view) + self.shift.reshape(view)


class StaticReduce(nn.Module):
    """ReduceMean/Max/Min from opset 18 on, where axes became an input
    (what torch.onnx's dynamo exporter writes; onnx2torch 1.5 has none)."""

    def __init__(self, kind: str, axes: list[int] | None, keepdims: bool, noop_with_empty_axes: bool):
        super().__init__()
        self.kind, self.axes, self.keepdims, self.noop = kind, axes, keepdims, noop_with_empty_axes

    def forward(self, x):
        if self.axes is None and self.noop:
            return x
        dims = tuple(range(x.dim())) if self.axes is None else tuple(a % x.dim() for a in self.axes)
        if not dims:
            return x
        reduce = {"mean": torch.mean, "max": torch.amax, "min": torch.amin}[self.kind]
        return reduce(x, dim=dims, keepdim=self.keepdims)


class StaticGelu(nn.Module):
    """Gelu (opset 20), exact or tanh-approximated."""

    def __init__(self, approximate: str):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, approximate=self.approximate)


# --- converters: (node, graph) -> OperationConverterResult ------------------------------------

def _reshape(node, graph):
    shape = _ints(_const(node, graph, 1, optional=False))
    return _result(node, StaticReshape(shape, bool(node.attributes.get("allowzero", 0))))


def _expand(node, graph):
    return _result(node, StaticExpand(_ints(_const(node, graph, 1, optional=False))))


def _tile(node, graph):
    return _result(node, StaticTile(_ints(_const(node, graph, 1, optional=False))))


def _squeeze(node, graph):
    return _result(node, StaticSqueeze(_ints(_const(node, graph, 1))))


def _unsqueeze(node, graph):
    return _result(node, StaticUnsqueeze(_ints(_const(node, graph, 1, optional=False))))


def _split(node, graph):
    sizes = _ints(_const(node, graph, 1))
    parts = int(node.attributes.get("num_outputs", len(node.output_values)))
    return _result(node, StaticSplit(int(node.attributes.get("axis", 0)), sizes, parts))


def _slice(node, graph):
    starts, ends = _ints(_const(node, graph, 1, optional=False)), _ints(_const(node, graph, 2, optional=False))
    return _result(node, StaticSlice(starts, ends, _ints(_const(node, graph, 3)), _ints(_const(node, graph, 4))))


def _resize(node, graph):
    from onnx2torch.node_converters.resize import _get_torch_align_corners, _onnx_mode_to_torch_mode

    attrs = node.attributes
    mode = attrs.get("mode", "nearest")
    transform = attrs.get("coordinate_transformation_mode", "half_pixel")
    if attrs.get("antialias", 0) or attrs.get("axes") is not None:
        raise NotImplementedError(f"ONNX node {node.name!r} (Resize): antialias/axes are not supported")
    # Resize-10 has (X, scales); later versions (X, roi, scales, sizes).
    scales = _floats(_const(node, graph, 1 if len(node.input_values) == 2 else 2))
    sizes = _ints(_const(node, graph, 3))
    scales = scales or None  # an empty tensor means "not given"
    sizes = sizes or None
    if sizes is None and scales is None:
        raise RuntimeShapeInput(node, "scales/sizes")
    rank = len(sizes or scales)
    torch_mode = _onnx_mode_to_torch_mode(mode, rank - 2)
    if mode == "nearest" and transform in ("half_pixel", "pytorch_half_pixel"):
        torch_mode = "nearest-exact"  # torch's nearest is ONNX's asymmetric + floor
    return _result(node, StaticResize(torch_mode, _get_torch_align_corners(mode, transform), scales, sizes))


def _pad(node, graph):
    pads = _ints(_const(node, graph, 1, optional=False))
    value = _const(node, graph, 2)
    axes = _ints(_const(node, graph, 3))
    rank = len(pads) // 2
    axes = axes if axes is not None else list(range(rank))
    if any(a < 0 for a in axes):
        raise NotImplementedError(f"ONNX node {node.name!r} (Pad): negative axes are not supported")
    by_axis = {axis: (pads[i], pads[rank + i]) for i, axis in enumerate(axes)}
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}[
        node.attributes.get("mode", "constant")]
    return _result(node, StaticPad(by_axis, mode, float(value.reshape(-1)[0]) if value is not None and
                                   value.numel() else 0.0))


def _constant_of_shape(node, graph):
    shape = _ints(_const(node, graph, 0, optional=False))
    value = node.attributes.get("value")
    fill = value.to_torch().reshape(-1) if value is not None else torch.zeros(1, dtype=torch.float32)
    return _result(node, Constant(torch.full(shape, fill[0].item(), dtype=fill.dtype)), data_inputs=0)


def _range(node, graph):
    start, limit, delta = (_const(node, graph, i, optional=False) for i in range(3))
    return _result(node, Constant(torch.arange(start.item(), limit.item(), delta.item(), dtype=start.dtype)),
                   data_inputs=0)


def _global_max_pool(node, graph):
    return _result(node, GlobalMaxPool())


def _lstm(node, graph):
    attrs = node.attributes
    unsupported = [k for k in ("clip", "input_forget", "activations") if k in attrs]
    if unsupported:
        raise NotImplementedError(f"ONNX node {node.name!r} (LSTM): attribute(s) {unsupported} not supported")
    w, r = _const(node, graph, 1, optional=False), _const(node, graph, 2, optional=False)
    b = _const(node, graph, 3)
    if _const(node, graph, 7) is not None and bool(_const(node, graph, 7).any()):
        raise NotImplementedError(f"ONNX node {node.name!r} (LSTM): peepholes are not supported")
    if len(node.input_values) > 4 and node.input_values[4]:
        lengths = _const(node, graph, 4)  # a constant: the static import checks it covers every step
        if lengths is None or lengths.unique().numel() != 1:
            raise RuntimeShapeInput(node, node.input_values[4])
    hidden = int(attrs.get("hidden_size", r.shape[-1]))
    bias = torch.zeros(w.shape[0], 4 * hidden, dtype=w.dtype) if b is None else b[:, :4 * hidden] + b[:, 4 * hidden:]
    # (i, o, f, c) -> the order forward() unpacks: (i, o, f, g) is the same; keep ONNX's packing.
    module = UnrolledLSTM(w, r, bias, hidden, w.shape[0], attrs.get("direction", "forward") == "reverse",
                          int(attrs.get("layout", 0)))
    from onnx2torch.utils.common import OnnxMapping, OperationConverterResult

    names = list(node.input_values) + [""] * 8
    return OperationConverterResult(torch_module=module, onnx_mapping=OnnxMapping(
        inputs=(names[0], names[5], names[6]), outputs=tuple(node.output_values)))


def _gather(node, graph):
    indices = _const(node, graph, 1)
    if indices is None:
        raise RuntimeShapeInput(node, "indices")
    return _result(node, ConstantGather(int(node.attributes.get("axis", 0)), indices))


def _batch_norm(node, graph):
    if node.attributes.get("training_mode", 0) or len([o for o in node.output_values if o]) > 1:
        return None  # training-mode statistics: onnx2torch's module
    gamma, beta, mean, var = (_const(node, graph, i, optional=False).double() for i in range(1, 5))
    scale = gamma / torch.sqrt(var + float(node.attributes.get("epsilon", 1e-5)))
    return _result(node, FoldedBatchNorm(scale.float(), (beta - mean * scale).float()))


def _cast(node, graph):
    from onnx import TensorProto

    if int(node.attributes.get("to", 0)) != TensorProto.FLOAT:
        return None  # other targets: onnx2torch's Cast
    return _result(node, CastToModelFloat())


def _reduce(kind: str):
    def convert(node, graph):
        axes = _ints(_const(node, graph, 1))
        attrs = node.attributes
        return _result(node, StaticReduce(kind, axes or None, bool(attrs.get("keepdims", 1)),
                                          bool(attrs.get("noop_with_empty_axes", 0))))
    return convert


def _gelu(node, graph):
    approximate = node.attributes.get("approximate", "none")
    approximate = approximate.decode() if isinstance(approximate, bytes) else str(approximate)
    return _result(node, StaticGelu(approximate))


def _with_fallback(converter, fallback):
    """``converter``, or onnx2torch's own where the input is data, not a
    constant (Gather of an embedding table by token ids), or where
    ``converter`` declines (returns None)."""
    def convert(node, graph):
        try:
            result = converter(node, graph)
        except RuntimeShapeInput:
            result = None
        if result is not None:
            return result
        if fallback is None:
            raise NotImplementedError(f"Converter is not implemented ({node.operation_type})")
        return fallback(node, graph)
    return convert


# op type -> (converter, the first opset whose shape arguments are inputs)
CONVERTERS = {
    "Reshape": (_reshape, 5), "Expand": (_expand, 8), "Tile": (_tile, 6), "Squeeze": (_squeeze, 13),
    "Unsqueeze": (_unsqueeze, 13), "Split": (_split, 13), "Slice": (_slice, 10), "Resize": (_resize, 10),
    "Pad": (_pad, 11), "ConstantOfShape": (_constant_of_shape, 9), "Range": (_range, 11),
    "GlobalMaxPool": (_global_max_pool, 1), "LSTM": (_lstm, 7),  # these two: not in onnx2torch 1.5
    "Gather": (_gather, 1), "Cast": (_cast, 6), "BatchNormalization": (_batch_norm, 9),
    # Opset 18+ forms torch.onnx's dynamo exporter writes (a .pt2 converted by the farm), not in onnx2torch 1.5
    "ReduceMean": (_reduce("mean"), 18), "ReduceMax": (_reduce("max"), 18), "ReduceMin": (_reduce("min"), 18),
    "Gelu": (_gelu, 20),
}
# Ops that fall back to onnx2torch's converter (data indices, Cast to other types, BN statistics
# that are inputs or training mode).
_DATA_FALLBACK = ("Gather", "Cast", "BatchNormalization")


def register() -> None:
    """Put these converters in onnx2torch's registry for every opset
    version of each op (from onnx's schemas), replacing onnx2torch's own."""
    from onnx import defs
    from onnx2torch.node_converters import registry

    for schema in defs.get_all_schemas_with_history():
        entry = CONVERTERS.get(schema.name) if schema.domain in ("", "ai.onnx") else None
        if entry and schema.since_version >= entry[1]:
            key = registry.OperationDescription(domain="", operation_type=schema.name, version=schema.since_version)
            current = registry._CONVERTER_REGISTRY.get(key)
            if getattr(current, "static_import", False):
                continue  # registered already (one registry per process)
            converter = entry[0]
            if schema.name in _DATA_FALLBACK:
                converter = _with_fallback(converter, current)
            converter.static_import = True
            registry._CONVERTER_REGISTRY[key] = converter
