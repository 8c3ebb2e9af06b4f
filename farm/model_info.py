"""Read what the coordinator needs to know about an ONNX model: its hash and
its inputs (names, element types, dimensions). Uses ``onnx`` only, never a
runtime, and never loads external weights."""

from __future__ import annotations

from dataclasses import dataclass
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

    def input(self, name: str) -> InputInfo | None:
        return next((i for i in self.inputs if i.name == name), None)


def _dim_value(dim) -> int | str | None:
    if dim.HasField("dim_value") and dim.dim_value > 0:
        return int(dim.dim_value)
    return dim.dim_param or None


def _uses_external_data(proto) -> bool:
    from onnx import TensorProto

    return any(init.data_location == TensorProto.EXTERNAL for init in proto.graph.initializer)


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
    if _uses_external_data(proto):
        raise ModelError(f"{path} keeps its weights in external data files, which the farm cannot ship to "
                         f"workers yet; save it as one file (onnx.save(model, path, save_as_external_data=False))")
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
    return ModelInfo(path, sha256_file(path), path.stat().st_size, tuple(inputs), outputs)
