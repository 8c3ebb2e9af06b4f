"""Build knobs declared as data, checked at submit by one function.

Each backend config declares a knob as a dataclass field: its annotation
gives the type (``int | None``), ``knob(...)`` the range or the allowed
values. ``check_knobs`` reads those declarations for every backend, so a
knob of the wrong type, range or value (``intra_op_num_threads: "lots"``,
``graph_optimization_level: ludicrous``) is refused when the sweep is
submitted, with the field's path, instead of failing on a worker.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any

from farm.errors import SpecError

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "a mapping",
               list: "a list", tuple: "a list"}


def knob(*, choices: tuple | None = None, minimum: float | None = None, maximum: float | None = None,
         normalize=None) -> Any:
    """A build knob: optional (None = the backend's default), with its bounds as data.
    ``normalize`` maps a value to the form ``choices`` lists (e.g. 8.6 -> "8.6")."""
    return dataclasses.field(default=None, metadata={"choices": choices, "minimum": minimum, "maximum": maximum,
                                                     "normalize": normalize})


@functools.lru_cache(maxsize=None)
def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _options(annotation) -> tuple:
    """The non-None members of ``X | None`` (a plain type is its own one member)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(a for a in typing.get_args(annotation) if a is not type(None))
    return (annotation,)


def _matches(value, annotation) -> bool:
    origin = typing.get_origin(annotation) or annotation
    if annotation is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, option) for option in typing.get_args(annotation))
    if origin is bool:
        return isinstance(value, bool)
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        inner = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return not inner or all(_matches(item, inner[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    return isinstance(value, origin) if isinstance(origin, type) else True


def _type_text(options: tuple) -> str:
    names = []
    for option in options:
        origin = typing.get_origin(option) or option
        if origin in (typing.Union, types.UnionType):
            names.append(_type_text(typing.get_args(option)))
        elif origin in (list, tuple):
            inner = [a for a in typing.get_args(option) if a is not Ellipsis]
            names.append("a non-empty list" + (f" of {_plural(_type_text((inner[0],)))}" if inner else ""))
        else:
            names.append(_TYPE_NAMES.get(origin, getattr(origin, "__name__", str(origin))))
    return " or ".join(dict.fromkeys(names))


def _plural(text: str) -> str:
    """'a string or a number' -> 'strings or numbers'."""
    return " or ".join(part.split(" ", 1)[-1] + "s" for part in text.split(" or "))


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


def check_knob(field: dataclasses.Field, annotation, value, where: str) -> None:
    if value is None:
        return
    at = f"spec field '{where}.{field.name}'"
    options = _options(annotation)
    empty_list = isinstance(value, (list, tuple)) and not value
    if empty_list or not any(_matches(value, option) for option in options):
        raise SpecError(f"{at}: give {_type_text(options)} (got {_short(value)})")
    meta = field.metadata
    items = value if isinstance(value, (list, tuple)) else [value]
    for index, item in enumerate(items):
        place = f"{at[:-1]}[{index}]'" if item is not value else at
        _check_bounds(meta, item, place)


def _check_bounds(meta, value, at: str) -> None:
    choices = meta.get("choices")
    if choices is not None:
        probe = meta["normalize"](value) if meta.get("normalize") else value
        if probe not in choices:
            raise SpecError(f"{at}: {_short(value)} is not allowed (allowed: {', '.join(map(str, choices))})")
    low, high = meta.get("minimum"), meta.get("maximum")
    if low is not None and high is not None and not low <= value <= high:
        raise SpecError(f"{at}: {value!r} is not allowed (allowed: {low:g}..{high:g})")
    if low is not None and value < low:
        raise SpecError(f"{at}: must be at least {low:g} (got {value!r})")
    if high is not None and value > high:
        raise SpecError(f"{at}: must be at most {high:g} (got {value!r})")


def check_knobs(cls, data: dict, where: str) -> None:
    """Every knob in ``data`` against ``cls``'s declarations (unknown knobs included)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        allowed = ", ".join(sorted(fields)) or "none"
        raise SpecError(f"spec field '{where}': unknown knob '{unknown[0]}' for backend {cls.name} "
                        f"(allowed: {allowed})")
    hints = _hints(cls)
    for name, value in data.items():
        check_knob(fields[name], hints.get(name, Any), value, where)
