"""The job's torch.export program as Torch-TensorRT takes it (torch only,
no TensorRT: this part runs and is tested on the CPU).

- precision: Torch-TensorRT builds strongly typed networks, whose tensor
  types come from the program, so an fp16/bf16 job casts the program's
  floating-point parameters, buffers and inputs and exports it again
  (the torch backend runs a ``.pt2`` under ``module.to(dtype)`` the same way);
- inputs: one (min, opt, max) range per program input from the job's
  profile, in the program's input order;
- names: the engine's bindings are named after the converted ONNX model's
  inputs and outputs (the names every job's feeds and accuracy reference use).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm.errors import BackendUnsupported
from workers.refusals import one_line

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


@dataclass(frozen=True)
class InputRange:
    name: str  # the converted ONNX model's input name (the engine binding's)
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]
    dtype: Any  # torch.dtype


def load_program(path: Path) -> Any:
    import torch

    return torch.export.load(str(path))


def user_input_values(program: Any) -> list[Any]:
    """The fake tensors of the program's user inputs, in call order."""
    names = set(program.graph_signature.user_inputs)
    return [node.meta.get("val") for node in program.graph.nodes if node.op == "placeholder" and node.name in names]


def _dynamic_shapes(program: Any) -> tuple:
    """torch.export's dynamic_shapes for the program's positional inputs:
    the dims that are symbolic in the program stay dynamic (Dim.DYNAMIC,
    their relations found again by export), the others static."""
    import torch

    def dims(value: Any) -> dict[int, Any] | None:
        shape = getattr(value, "shape", ())
        found = {i: torch.export.Dim.DYNAMIC for i, d in enumerate(shape) if isinstance(d, torch.SymInt)}
        return found or None

    return tuple(dims(v) for v in user_input_values(program))


def _example_args(program: Any, dtype: Any) -> tuple:
    """The program's own example inputs (saved by torch.export.save), cast:
    an export needs values its dynamic dims were valid for."""
    import torch

    saved = getattr(program, "example_inputs", None)
    if not saved:
        raise BackendUnsupported("the .pt2 carries no example inputs (torch.export.save of a program from "
                                 "torch < 2.5?), which casting it to another precision needs; export it again")
    args, kwargs = saved
    if kwargs:
        raise BackendUnsupported("the program takes keyword inputs; torch-tensorrt jobs take positional inputs")
    return tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)


def cast_program(program: Any, precision: str) -> Any:
    """The program computing in the job's precision (fp32: as it is)."""
    import torch

    dtype = getattr(torch, DTYPES[precision])
    if dtype == torch.float32:
        return program
    module = program.module()
    module.to(dtype)
    try:
        return torch.export.export(module, _example_args(program, dtype), dynamic_shapes=_dynamic_shapes(program),
                                   strict=False)
    except BackendUnsupported:
        raise
    except Exception as exc:  # torch.export's own refusal of the cast program: its first line names the op
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise BackendUnsupported(f"torch.export could not export the program cast to {DTYPES[precision]}: "
                                 f"{first}") from None


def input_ranges(program: Any, model: Any, shapes: dict[str, dict]) -> list[InputRange]:
    """One range per program input, named and shaped after the converted
    ONNX model's input at the same position (torch.onnx.export keeps the
    program's input order)."""
    values = user_input_values(program)
    if len(values) != len(model.inputs):
        raise BackendUnsupported(f"the program has {len(values)} inputs and its ONNX conversion "
                                 f"{len(model.inputs)}; their bindings cannot be matched")
    ranges = []
    for value, info in zip(values, model.inputs):
        shape = shapes[info.name]
        ranges.append(InputRange(info.name, tuple(shape["min"]), tuple(shape["opt"]), tuple(shape["max"]),
                                 value.dtype))
    return ranges


def binding_names(program: Any, model: Any) -> tuple[Any, Any]:
    """(input names, output names) as pytrees shaped like the program's
    positional inputs and its return value, as Torch-TensorRT's
    ``arg_input_binding_names`` / ``output_binding_names`` take them."""
    import torch.utils._pytree as pytree

    signature = program.module_call_graph[0].signature
    in_spec, out_spec = signature.in_spec, signature.out_spec
    args_spec = in_spec.child(0) if hasattr(in_spec, "child") else in_spec.children_specs[0]
    outputs = list(model.outputs)
    if out_spec.num_leaves != len(outputs):
        raise BackendUnsupported(f"the program returns {out_spec.num_leaves} tensors and its ONNX conversion "
                                 f"{len(outputs)} outputs; their bindings cannot be matched")
    inputs = [info.name for info in model.inputs]
    return pytree.tree_unflatten(inputs, args_spec), pytree.tree_unflatten(outputs, out_spec)


def unsupported_reason(exc: BaseException) -> str | None:
    """One line for Torch-TensorRT's refusal of an operator (its
    UnsupportedOperatorException, often wrapped), None for anything else."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    refusals = [e for e in seen if type(e).__name__ == "UnsupportedOperatorException"]
    if not refusals:
        return None
    # The innermost names the operator; the outer ones print the whole graph module.
    lines = [line.strip() for e in reversed(refusals) for line in str(e).splitlines() if line.strip()]
    return one_line("torch-tensorrt cannot convert the program: " + (lines[0] if lines else
                                                                      "an operator has no converter"))

