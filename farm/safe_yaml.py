"""YAML for sweep specs, bounded before anything is expanded.

``yaml.safe_load`` shares aliased nodes, so a 1 kB "billion laughs" file
loads quickly and explodes later, when the spec is validated, hashed or
stored as JSON (a MemoryError after a minute, or a hang). Here the file's
size is checked before parsing, and the composed node graph's *expanded*
size (every alias counted at every place it is used, scalars by their
length) before any Python object is built. Anchors and aliases stay
usable for what specs need them for: reusing a shape or a knob block.
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from farm.errors import SpecError

MAX_SPEC_BYTES = 1 << 20  # a real spec is a few kB; 1 MiB leaves room for thousands of profiles
MAX_EXPANDED = 1 << 22  # expanded nodes + scalar characters (4 Mi) after aliases are resolved


def read_spec_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(f"spec file {path} is {size / 1e6:.1f} MB; a spec may be at most "
                            f"{MAX_SPEC_BYTES // 1024} kB")
        with open(path, "rb") as handle:
            data = handle.read(MAX_SPEC_BYTES + 1)  # the file may grow between stat and read
    except FileNotFoundError:
        raise SpecError(f"spec file not found: {path}") from None
    except IsADirectoryError:
        raise SpecError(f"spec file {path} is a directory") from None
    except OSError as exc:
        raise SpecError(f"cannot read spec file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"spec file {path} is over {MAX_SPEC_BYTES // 1024} kB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"spec file {path} is not UTF-8 text (byte {exc.start})") from None


def load_yaml(text: str, path: Path):
    """The document in ``text`` as Python data, refusing bombs and cycles."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expanded_size(node, path)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None)
        raise SpecError(f"spec file {path} is not valid YAML{where}" + (f" ({problem})" if problem else "")) from None
    except RecursionError:
        raise SpecError(f"spec file {path} is nested too deeply") from None
    finally:
        loader.dispose()


def _check_expanded_size(root: yaml.Node, path: Path) -> None:
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise SpecError(f"spec file {path} has an alias that contains itself (a recursive anchor)")
        active.add(key)
        if isinstance(node, yaml.ScalarNode):
            total = 1 + len(node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(item) for item in node.value)
        else:
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        active.discard(key)
        if total > MAX_EXPANDED:
            raise SpecError(f"spec file {path} expands to more than {MAX_EXPANDED:,} nodes and characters once "
                            f"its aliases are resolved (a YAML alias bomb?); refusing it")
        sizes[key] = total
        return total

    size(root)


def first_unstorable(value, where: str = "") -> tuple[str, str] | None:
    """(field path, problem) of the first value no database column or JSON
    document can hold: a string (key or value) with a NUL character, or a
    number that is not finite (YAML's .nan / .inf; JSON has neither)."""
    stack = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return at or "spec", "contains a NUL character"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return at or "spec", f"must be a finite number (got {item})"
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and "\x00" in key:
                    return at or "spec", "contains a NUL character"
                stack.append((child, f"{at}.{key}" if at else str(key)))
        elif isinstance(item, (list, tuple)):
            stack.extend((child, f"{at}[{i}]") for i, child in enumerate(item))
    return None
