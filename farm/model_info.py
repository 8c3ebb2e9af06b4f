"""Read what the coordinator needs to know about an ONNX model: its hash and
its inputs (names, element types, dimensions). Uses ``onnx`` only, never a
runtime, and never loads external weights: a model that keeps them in data
files beside it is checked and hashed as one model (farm/model_bundle.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from farm.errors import ModelError
from farm.store.base import hash_file as sha256_file  # noqa: F401 - one hashing routine

# ONNX TensorProto element types -> numpy dtype names (the ones models use).
ONNX_DTYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32",
    7: "int64", 8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32",
    13: "uint64", 16: "bfloat16",
}


# Types the farm can draw synthetic inputs for; others need the spec's ``data``.
SYNTHETIC_DTYPES = frozenset(ONNX_DTYPES.values()) - {"string"}


@dataclass(frozen=True)
class InputInfo:
    name: str
    dtype: str
    # int = fixed, str/None = dynamic; dims None = the model declares no
    # shape at all (rank unknown: a profile must give it).
    dims: tuple[int | str | None, ...] | None

    @property
    def rank(self) -> int | None:
        return None if self.dims is None else len(self.dims)

    def is_fixed(self, axis: int) -> bool:
        if self.dims is None:
            return False
        return isinstance(self.dims[axis], int) and self.dims[axis] > 0  # type: ignore[operator]

    def to_json(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "dims": None if self.dims is None else list(self.dims)}


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    sha256: str
    size_bytes: int
    inputs: tuple[InputInfo, ...]
    outputs: tuple[str, ...]
    # The first node that computes on a bfloat16 graph input (reached through
    # data-movement ops only), as "Relu (node 3) on input 'x'"; None if none.
    # Backends without bfloat16 kernels refuse the model at submit on it.
    bf16_compute: str | None = None
    # External data files (farm.model_bundle.DataFile), checked to lie in the model's folder;
    # with any, sha256 is the model manifest's (graph + data files) and size_bytes their total.
    data_files: tuple = ()
    # Nodes whose operator is in no ONNX or ONNX Runtime domain (a custom op,
    # or a TensorRT plugin by name), as "node 3 (frob) com.example::Frobnicate";
    # backends that cannot load plugins refuse the model at submit on it.
    custom_ops: tuple[str, ...] = ()
    # A model converted from another format (farm/sources.py): the source's name, format, content hash,
    # the converter's name and versions, the opset and the parity check. None: the user gave ONNX.
    source: dict | None = field(default=None, compare=False)

    def input(self, name: str) -> InputInfo | None:
        return next((i for i in self.inputs if i.name == name), None)


def _dim_value(dim) -> int | str | None:
    if dim.HasField("dim_value") and dim.dim_value > 0:
        return int(dim.dim_value)
    return dim.dim_param or None


def read_model(path: str | Path) -> ModelInfo:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
    except PermissionError as exc:
        raise ModelError(f"cannot read model {path}: {exc.strerror}") from None
    except Exception:
        raise ModelError(f"{path} is not an ONNX model (onnx could not parse it)") from None
    if not proto.graph.node and not proto.graph.input:
        raise ModelError(f"{path} is not an ONNX model (no graph)")
    check_structure(proto, path)
    from farm.model_bundle import data_files, external_locations, manifest

    files = data_files(path, external_locations(proto))  # every location checked before any file is read
    initializers = {init.name for init in proto.graph.initializer}
    inputs = []
    for value in proto.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dtype = ONNX_DTYPES.get(tensor.elem_type, f"onnx:{tensor.elem_type}")
        dims = tuple(_dim_value(d) for d in tensor.shape.dim) if tensor.HasField("shape") else None
        inputs.append(InputInfo(value.name, dtype, dims))
    outputs = tuple(o.name for o in proto.graph.output)
    bf16 = [i.name for i in inputs if i.dtype == "bfloat16"]
    bf16_compute = _first_compute_on(proto, bf16) if bf16 else None
    sha256, size = sha256_file(path), path.stat().st_size
    if files:  # graph + data files are one model: the manifest's hash, their total size
        import hashlib

        sha256, size = hashlib.sha256(manifest(sha256, files)).hexdigest(), size + sum(f.size for f in files)
    return ModelInfo(path, sha256, size, tuple(inputs), outputs, bf16_compute=bf16_compute, data_files=files,
                     custom_ops=_custom_ops(proto))


# Operator domains a farm backend can run besides the ONNX standard ones:
# ONNX Runtime's contrib ops (quantized and fused kernels that exporters and
# quantizers emit). Any other domain is a custom op no backend implements.
STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training")
KNOWN_DOMAINS = STANDARD_DOMAINS + ("com.microsoft", "com.microsoft.nchwc", "com.ms.internal.nhwc")


def check_structure(proto, path: Path) -> None:
    """What no backend can take, refused at submit in one line instead of
    failing every job on a worker: an IR version or opset newer than the
    onnx library knows, an input name given twice, no outputs, a node
    input nothing produces. (Custom operators are for each backend to
    refuse: TensorRT may load them as plugins; ModelInfo.custom_ops.)"""
    import onnx
    from onnx import defs

    if proto.ir_version > onnx.IR_VERSION:
        raise ModelError(f"{path} has IR version {proto.ir_version}; the newest the farm's onnx {onnx.__version__} "
                         f"reads is {onnx.IR_VERSION}")
    opsets = {(o.domain or ""): o.version for o in proto.opset_import}
    newest = defs.onnx_opset_version()
    for domain in ("", "ai.onnx"):
        if opsets.get(domain, 0) > newest:
            raise ModelError(f"{path} imports ONNX opset {opsets[domain]}; the newest opset is {newest} (onnx "
                             f"{onnx.__version__}), so no backend can run it")
    names = [value.name for value in proto.graph.input]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ModelError(f"{path} declares graph input {twice[0]!r} {names.count(twice[0])} times; input names "
                         f"must be unique")
    if not proto.graph.output:
        raise ModelError(f"{path} declares no graph outputs, so there is nothing to compute or measure")
    _check_dataflow(proto, path)


def _custom_ops(proto) -> tuple[str, ...]:
    """Nodes no standard or ONNX Runtime domain defines (model-local
    functions excepted): a custom op or a TensorRT plugin named as an op."""
    from onnx import defs

    functions = {(f.domain, f.name) for f in proto.functions}
    found = []
    for index, node in enumerate(proto.graph.node):
        domain = node.domain or ""
        if (domain, node.op_type) in functions:
            continue
        standard = domain in STANDARD_DOMAINS
        if (standard and not defs.has(node.op_type, "" if domain == "ai.onnx" else domain)) or (
                domain not in KNOWN_DOMAINS):
            found.append(f"node {index} ({node.name or 'unnamed'}) {domain or 'ai.onnx'}::{node.op_type}")
    return tuple(found)


def _check_dataflow(proto, path: Path) -> None:
    """Every input of a top-level node and every graph output is produced by
    a graph input, an initializer or a node (order is not checked: runtimes
    sort the graph themselves). Subgraphs may name outer values and are
    left to the runtime."""
    graph = proto.graph
    known = {v.name for v in graph.input} | {i.name for i in graph.initializer} | {""}
    known |= {i.values.name for i in graph.sparse_initializer}
    for node in graph.node:
        known.update(node.output)
    for index, node in enumerate(graph.node):
        missing = next((name for name in node.input if name not in known), None)
        if missing is not None:
            raise ModelError(f"{path}: input {missing!r} of node {index} ({node.name or node.op_type}) is produced "
                             f"by no node, graph input or initializer (a dangling edge)")
    for output in graph.output:
        if output.name not in known:
            raise ModelError(f"{path}: graph output {output.name!r} is produced by no node")


# Ops that only move or reshape data: every runtime has them for every type.
_MOVES = frozenset({"Identity", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Concat", "Gather",
                    "Slice", "Split", "Expand", "Tile", "Shape", "Size"})


def _first_compute_on(proto, names: list[str]) -> str | None:
    """The first node (in graph order) that computes on one of ``names`` or
    on data moved from them; a Cast ends the trail (it converts)."""
    carried = {name: name for name in names}  # value -> the graph input it carries
    for index, node in enumerate(proto.graph.node):
        source = next((carried[i] for i in node.input if i in carried), None)
        if source is None:
            continue
        if node.op_type == "Cast" or node.op_type in ("Shape", "Size"):
            continue
        if node.op_type in _MOVES and (node.domain or "") in ("", "ai.onnx"):
            carried.update({out: source for out in node.output})
            continue
        return f"{node.op_type} (node {index}{', ' + node.name if node.name else ''}) on input {source!r}"
    return None
