"""torch.export program (``.pt2``) -> ONNX with ``torch.onnx.export(...,
dynamo=True)``: the program as saved (its example inputs, dynamic dims and
their ranges) is what is converted, nothing is traced again."""

from __future__ import annotations

import re
from pathlib import Path

from converters import CONVERTERS, ConversionFailed, MissingFramework
from converters import parity as parity_check

CONVERTER = CONVERTERS["torch.export"].name


def _torch():
    try:
        import torch
        import onnxscript  # noqa: F401 - torch.onnx's dynamo exporter needs it
    except ModuleNotFoundError as exc:
        raise MissingFramework(f"converting a torch.export program needs {exc.name}, which is not installed "
                               f"here: pip install 'engine-farm[torch]'") from None
    return torch


def load_program(source: Path):
    torch = _torch()
    try:
        return torch.export.load(str(source))
    except Exception as exc:  # an op this torch does not know, a newer archive version, a broken file
        raise ConversionFailed(f"torch.export.load (torch {torch.__version__}) cannot load {source.name}: "
                               f"{_first_line(exc)}") from None


def user_inputs(program) -> list[dict]:
    """The program's tensor inputs: name, dtype, dims (int fixed, str dynamic)
    and each dynamic dim's range, from the program's own metadata."""
    import torch

    names = [s.arg.name for s in program.graph_signature.input_specs
             if s.kind == torch.export.graph_signature.InputKind.USER_INPUT]
    metas = {n.name: n.meta.get("val") for n in program.graph.nodes if n.op == "placeholder"}
    ranges = {str(sym): (int(r.lower), None if str(r.upper) in ("oo", "int_oo") else int(r.upper))
              for sym, r in program.range_constraints.items()}
    inputs = []
    for name in names:
        val = metas.get(name)
        if val is None or not hasattr(val, "shape"):
            continue  # a non-tensor input (a constant the program was exported with)
        dims = [d if isinstance(d, int) else str(d) for d in val.shape]  # SymInt: dynamic
        dynamic = {str(d): list(ranges.get(str(d), (None, None))) for d in dims if isinstance(d, str)}
        inputs.append({"name": name, "dtype": str(val.dtype).removeprefix("torch."), "dims": dims,
                       "dynamic": dynamic})
    return inputs


def _example_args(program) -> tuple[tuple, dict] | None:
    example = getattr(program, "example_inputs", None)
    if not example:
        return None
    args, kwargs = example
    return tuple(args), dict(kwargs or {})


def _loaded(source: Path, shapes: dict | None):
    """(program, its inputs, example args and kwargs)."""
    torch = _torch()
    program = load_program(source)
    inputs = user_inputs(program)
    example = _example_args(program)
    if example is None:  # an archive saved without example inputs: make some of the declared shapes
        feeds = parity_check.synthetic_feeds(
            [{**i, "shape": parity_check.concrete_shape(i["dims"], shapes, i["name"])} for i in inputs])
        example = (tuple(torch.from_numpy(feeds[i["name"]]) for i in inputs), {})
    return program, inputs, example


def parity(source: Path, out: Path, data: Path | None, shapes: dict | None) -> dict:
    program, inputs, example = _loaded(source, shapes)
    return _parity(program, out, inputs, example, data)


def convert(source: Path, out: Path, data: Path | None, shapes: dict | None) -> dict:
    torch = _torch()
    program, inputs, example = _loaded(source, shapes)
    try:
        _export(torch, program, example, out)
    except Exception as exc:
        raise ConversionFailed(describe_failure(exc, torch.__version__)) from None
    parity_check.check_ops(out, f"{CONVERTER} (torch {torch.__version__})")
    return {"inputs": inputs, "parity": _parity(program, out, inputs, example, data)}


def _export(torch, program, example, out: Path) -> None:
    """One ONNX file; past protobuf's 2 GB the weights go to external data
    files beside it (``model.onnx.data``), which the farm stores with it."""
    def export(external: bool):
        torch.onnx.export(program, example[0], str(out), kwargs=example[1] or None, dynamo=True,
                          external_data=external, verbose=False)

    try:
        export(False)
    except Exception as exc:
        if not _too_large(exc):
            raise
        export(True)


def _too_large(exc: BaseException) -> bool:
    text = " ".join(str(e) for e in _chain(exc)).lower()
    return "2gb" in text or "2 gb" in text or "protobuf" in text and ("size" in text or "large" in text)


def _parity(program, onnx_path: Path, inputs: list[dict], example, data: Path | None) -> dict:
    import torch

    names = [i["name"] for i in inputs]
    batch = next((a.shape[0] for a in example[0] if hasattr(a, "shape") and a.dim()), 1)
    feeds = parity_check.data_feeds(data, names, batch) if data else None
    if feeds is not None:
        args, inputs_from = tuple(torch.from_numpy(feeds[n]) for n in names), "data"
    else:
        args = tuple(a for a in example[0])
        feeds = {n: a.detach().cpu().numpy() for n, a in zip(names, args) if hasattr(a, "numpy")}
        inputs_from = "example inputs saved in the program"
    with torch.no_grad():
        result = program.module()(*args, **example[1])
    leaves = [t.detach().cpu().numpy() for t in torch.utils._pytree.tree_leaves(result) if hasattr(t, "detach")]
    return parity_check.compare(onnx_path, feeds, leaves, inputs_from)


def describe_failure(exc: BaseException, version: str) -> str:
    """One line naming the node and op torch.onnx could not translate,
    from the exporter's chained errors (never the traceback)."""
    text = "\n".join(str(e) for e in _chain(exc))
    op = re.search(r"No ONNX function found for <OpOverload\(op='([^']+)', overload='([^']+)'\)>", text)
    node = re.search(r"Error when translating node %(\S+)", text)
    where = f"node '{node.group(1)}'" if node else "the program"
    if op:
        name = op.group(1) + ("" if op.group(2) == "default" else f".{op.group(2)}")
        return (f"{CONVERTER} (torch {version}) cannot convert {where}: op {name} has no ONNX translation "
                f"(no ONNX function or decomposition registered for it)")
    return f"{CONVERTER} (torch {version}) failed on {where}: {_summary(exc)}"


def _chain(exc: BaseException):
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _summary(exc: BaseException) -> str:
    """The innermost cause's first line (the exporter's outer message is advice)."""
    innermost = list(_chain(exc))[-1]
    return f"{type(innermost).__name__}: {_first_line(innermost)}"


def _first_line(exc: BaseException) -> str:
    line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    line = re.sub(r"\x1b\[[0-9;]*m", "", line)
    return line if len(line) <= 300 else line[:300] + "..."
