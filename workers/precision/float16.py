"""fp32 -> fp16 / bf16 model conversion for strongly typed builders.

TensorRT(-RTX) strongly typed networks take every tensor type from the
model, so "build in fp16" means "convert the model". The converter keeps the
model's inputs and outputs fp32 (callers feed and compare fp32) and keeps
numerically sensitive ops in fp32, inserting Casts at region borders.
Float subgraphs that only compute shapes (Shape -> Cast -> Mul -> ...) stay
fp32 too: their values are sizes, not activations.

Written against ``onnx`` alone (onnxconverter-common has no bf16 and is a
dependency we do not need).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Reductions, normalisations, exponentials and ops whose extra inputs must
# stay float32 by the ONNX spec (Resize scales, NMS boxes...).
KEEP_FP32 = frozenset({
    "BatchNormalization", "LayerNormalization", "InstanceNormalization", "GroupNormalization",
    "LpNormalization",
    "Softmax", "LogSoftmax", "Hardmax",
    "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSum",
    "ReduceLogSumExp", "ReduceProd", "CumSum",
    "Exp", "Log", "Pow", "Sqrt", "Reciprocal", "Erf",
    "NonMaxSuppression", "RoiAlign", "TopK", "Range",
})
# Ops that run low with only these inputs converted (the others, like
# Resize's scales, must stay float32 by the ONNX spec).
DATA_INPUTS = {"Resize": (0,), "Upsample": (0,)}
# Ops reading any type: their inputs are never cast.
ANY_INPUT = frozenset({"Cast", "Shape", "Size"})
# Output type is set by an attribute, not by the inputs: never re-typed.
TYPE_FIXED = frozenset({
    "Cast", "CastLike", "Constant", "ConstantOfShape", "EyeLike", "RandomNormal", "RandomUniform",
    "RandomNormalLike", "RandomUniformLike", "Multinomial", "QuantizeLinear", "DequantizeLinear",
    "Shape", "Size",
})
SHAPE_SOURCES = frozenset({"Shape", "Size"})
FP16_MAX = 65504.0


def _target(precision: str):
    from onnx import TensorProto

    return {"fp16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16}[precision]


def _elem_types(model) -> dict[str, int]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*graph.input, *graph.output, *graph.value_info)}
    types.update({init.name: init.data_type for init in graph.initializer})
    return types


def _subgraph_references(graph) -> set[str]:
    """Outer-scope names read by If/Loop/Scan bodies: those stay fp32."""
    names: set[str] = set()
    for node in graph.node:
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                for inner in sub.node:
                    names.update(inner.input)
                names |= _subgraph_references(sub)
    return names


def _shape_only(graph, constants: set[str]) -> set[str]:
    """Tensors computed from shapes only (and constants)."""
    derived: set[str] = set()
    for node in graph.node:  # ONNX graphs are topologically sorted
        feeds = [n for n in node.input if n and n not in constants]
        if node.op_type in SHAPE_SOURCES or (feeds and all(n in derived for n in feeds)):
            derived.update(node.output)
    return derived


def _as_low(values: np.ndarray, to: int) -> np.ndarray:
    if to == _target("fp16"):
        return values.astype(np.float16)
    import ml_dtypes  # onnx's own dependency; numpy has no bfloat16

    return values.astype(ml_dtypes.bfloat16)


class _Converter:
    def __init__(self, model, precision: str, keep_fp32: frozenset[str] = frozenset()):
        self.model = model
        self.keep = KEEP_FP32 | keep_fp32
        self.graph = model.graph
        self.low = _target(precision)
        self.suffix = precision
        self.types = _elem_types(model)
        self.home: dict[str, int] = {}  # tensor -> type it has after conversion
        self.casts: dict[tuple[str, int], str] = {}
        self.new_nodes: list = []
        self.initializers = {init.name: init for init in self.graph.initializer}
        self.readers: dict[str, list] = {}
        for node in self.graph.node:
            for name in node.input:
                self.readers.setdefault(name, []).append(node)
        self.constants = set(self.initializers) | {o for n in self.graph.node if n.op_type == "Constant" for o in n.output}
        self.pinned = _subgraph_references(self.graph) | _shape_only(self.graph, self.constants)

    def _is_float(self, name: str) -> bool:
        from onnx import TensorProto

        return self.types.get(name) == TensorProto.FLOAT

    def runs_low(self, node) -> bool:
        if node.op_type in self.keep or node.op_type in TYPE_FIXED:
            return False
        if any(attr.HasField("g") or attr.graphs for attr in node.attribute):
            return False
        if any(o in self.pinned for o in node.output):
            return False
        return any(self._is_float(n) for n in (*node.input, *node.output) if n)

    def _cast(self, name: str, to: int) -> str:
        from onnx import helper

        key = (name, to)
        if key not in self.casts:
            if name in self.initializers:
                self.casts[key] = self._convert_initializer(name, to)
            else:
                out = f"{name}/cast_{'fp32' if to == 1 else self.suffix}"
                self.new_nodes.append(helper.make_node("Cast", [name], [out], to=to, name=out))
                self.casts[key] = out
        return self.casts[key]

    def _convert_initializer(self, name: str, to: int) -> str:
        from onnx import numpy_helper

        values = numpy_helper.to_array(self.initializers[name])
        if to == _target("fp16"):
            values = np.clip(values, -FP16_MAX, FP16_MAX)  # keep masks like -1e9 finite
        out = f"{name}/{self.suffix}"
        self.graph.initializer.append(numpy_helper.from_array(_as_low(values, to), out))
        return out

    def convert(self) -> None:
        from onnx import TensorProto

        for name in self.types:
            self.home[name] = self.types[name]
        nodes = list(self.graph.node)
        del self.graph.node[:]
        for node in nodes:
            if node.op_type == "Constant" and self._constant_low(node):
                self._retype_constant(node)
            want = self.low if self.runs_low(node) else TensorProto.FLOAT
            for index in self._typed_inputs(node, want):
                name = node.input[index]
                if name and self._is_float(name) and self.home.get(name) != want:
                    node.input[index] = self._cast(name, want)
            if want == self.low:
                for name in node.output:
                    if self._is_float(name):
                        self.home[name] = self.low
            self.graph.node.extend(self.new_nodes)
            self.new_nodes.clear()
            self.graph.node.append(node)
        self._fp32_outputs()
        del self.graph.value_info[:]  # stale types; consumers re-infer

    def _typed_inputs(self, node, want: int) -> range | tuple[int, ...]:
        """Inputs whose type follows the node's region."""
        if node.op_type in ANY_INPUT:
            return ()
        if want == self.low and node.op_type in DATA_INPUTS:
            return DATA_INPUTS[node.op_type]
        return range(len(node.input))

    def _constant_low(self, node) -> bool:
        """A float Constant all of whose readers run low is stored low."""
        out = node.output[0]
        if not self._is_float(out) or out in self.pinned:
            return False
        readers = self.readers.get(out, [])
        outputs = {o.name for o in self.graph.output}
        return bool(readers) and out not in outputs and all(self._reads_low(n, out) for n in readers)

    def _reads_low(self, node, name: str) -> bool:
        if not self.runs_low(node):
            return False
        typed = self._typed_inputs(node, self.low)
        return all(i in typed for i, n in enumerate(node.input) if n == name)

    def _retype_constant(self, node) -> None:
        from onnx import numpy_helper

        attr = next((a for a in node.attribute if a.name == "value"), None)
        if attr is None:
            return
        values = numpy_helper.to_array(attr.t)
        if self.low == _target("fp16"):
            values = np.clip(values, -FP16_MAX, FP16_MAX)
        attr.t.CopyFrom(numpy_helper.from_array(_as_low(values, self.low), attr.t.name))
        self.home[node.output[0]] = self.low

    def _fp32_outputs(self) -> None:
        from onnx import TensorProto, helper

        for output in self.graph.output:
            if self.home.get(output.name) != self.low:
                continue
            inner = f"{output.name}/{self.suffix}"
            for node in self.graph.node:
                node.output[:] = [inner if o == output.name else o for o in node.output]
                node.input[:] = [inner if i == output.name else i for i in node.input]
            self.graph.node.append(helper.make_node("Cast", [inner], [output.name], to=TensorProto.FLOAT,
                                                    name=f"{output.name}/cast_fp32"))


def _prune_initializers(graph) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    keep = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def _converted(model_path: Path, precision: str, keep_fp32: frozenset[str]):
    import onnx

    model = onnx.load(str(model_path))
    _Converter(model, precision, keep_fp32).convert()
    _prune_initializers(model.graph)
    return model


def convert_float(model_path: Path, out_path: Path, precision: str, keep_fp32: tuple[str, ...] = ()) -> Path:
    """Write ``model_path`` converted to ``precision`` ("fp16" | "bf16");
    ``keep_fp32`` adds op types the consumer has no low-precision kernel for."""
    import onnx

    keep = frozenset(keep_fp32)
    # A full check re-infers every type, so a misplaced Cast fails here and
    # not inside the engine builder. ONNX admits bf16 for Conv only from
    # opset 22, so bf16 models cannot pass it; the converter places Casts
    # the same way for both types, so the fp16 twin is what gets checked.
    checked = _converted(model_path, "fp16", keep)
    onnx.checker.check_model(checked, full_check=True)
    model = checked if precision == "fp16" else _converted(model_path, precision, keep)
    onnx.checker.check_model(model)
    onnx.save(model, str(out_path))
    return out_path
