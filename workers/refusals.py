"""A job's refusal is one line a person can act on: the backend classifies
its own errors (unsupported: this backend cannot take this model or
configuration; anything unclassified stays a failure with its traceback),
names the first relevant node or operator, carries no worker paths, and
cuts long lists with a count ("... and 41 more nodes").

``one_line`` shapes every ``unsupported`` reason (farm.errors.BackendUnsupported
raised anywhere, or an error a backend's ``classify`` recognised)."""

from __future__ import annotations

import re

MAX_CHARS = 600  # a reason is read in a table's note column and a status line
KEEP_ITEMS = 3  # of a list of nodes or problems, before "and N more"

# An absolute path (worker work directories, caches, the library's build
# tree): shown as its last component, which is what names the file.
_PATH = re.compile(r"(?<![\w.])/(?:[\w.+-]+/)+([\w.+-]+)")
_OP_TYPE = re.compile(r"\(op_type:(\w+)(?:, node name: ([^)]*))?\)")


def _internal(path: str) -> bool:
    """A path of the worker's own making (its job work directory, its cache
    under FARM_HOME, the temp directory, an installed library's or its
    build tree's source file), not one the user gave (a plugin library)."""
    import tempfile

    from farm.config import settings

    roots = [tempfile.gettempdir(), str(settings().home)]
    return (any(path.startswith(root.rstrip("/") + "/") for root in roots if root)
            or any(part in path for part in ("/site-packages/", "/dist-packages/", "/_src/", "/job-")))


def strip_paths(text: str) -> str:
    """Worker-made paths as their last component (what names the file); a
    path the user gave stays whole."""
    return _PATH.sub(lambda m: m.group(1) if _internal(m.group(0)) else m.group(0), text)


def cut(items: list[str], what: str = "more", keep: int = KEEP_ITEMS) -> str:
    """``a; b; c; and 41 more nodes`` (duplicates said once, with a count)."""
    counted: dict[str, int] = {}
    for item in items:
        counted[item] = counted.get(item, 0) + 1
    unique = [item + (f" (x{n})" if n > 1 else "") for item, n in counted.items()]
    shown = unique[:keep]
    rest = len(unique) - len(shown)
    return "; ".join(shown) + (f"; and {rest} {what}" if rest else "")


def one_line(text: str, limit: int = MAX_CHARS) -> str:
    """One line, no worker paths, a repeated clause said once, bounded."""
    line = " ".join(strip_paths(str(text)).split())
    clauses = [clause.strip() for clause in line.split(";") if clause.strip()]
    if len(clauses) > 1:
        line = cut(clauses, "more", keep=len(clauses))  # dedupe only: lists are cut where they are made
    return line if len(line) <= limit else line[:limit - 3] + "..."


def onnx_refusal(exc: BaseException, step: str) -> str | None:
    """An onnx checker or shape-inference error raised while a backend
    prepared the model (an fp16 conversion, a quantization): the model
    cannot take that step, which is ``unsupported``, not a farm bug."""
    try:
        from onnx.checker import ValidationError
        from onnx.shape_inference import InferenceError
    except ImportError:
        return None
    if not isinstance(exc, (ValidationError, InferenceError)):
        return None
    text = " ".join(str(exc).split())
    found = _OP_TYPE.search(text)
    detail = _OP_TYPE.sub("", text).replace("[ShapeInferenceError]", "").replace("[TypeInferenceError]", "")
    detail = " ".join(detail.split()).lstrip(": ")
    if found:
        node = f" (node {found.group(2)})" if found.group(2) else ""
        return one_line(f"{step}: {found.group(1)}{node} does not accept it ({detail})")
    return one_line(f"{step}: the prepared model is not valid ONNX: {detail}")
