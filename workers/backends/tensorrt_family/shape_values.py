"""Shape-tensor values through the 64-bit API.

TensorRT 10.11 deprecated the 32-bit C++ calls (``setShapeValues``,
``getShapeValues``, ``getProfileTensorValues``) and TensorRT 11 lists only
their V2 successors (int64). The Python binding kept its names
(``set_shape_input``, ``get_shape_input``, ``get_tensor_profile_values``)
and calls the V2 functions underneath where the library has them; an older
binding converts every value to int32 and refuses larger ones. Which one the
installed library has is probed once (a value past 2**31 either comes back
whole or is refused) and recorded, and a value a 32-bit binding cannot hold
is refused in one line instead of being truncated.
"""

from __future__ import annotations

from typing import Any, Sequence

from workers.backends.tensorrt_family.io_plan import EngineError, Range

INT32_MAX = 2**31 - 1
_PROBE = 2**40
_APIS: dict[str, str] = {}


def values_api(lib: Any, builder: Any) -> str:
    """"int64" where the binding carries 64-bit shape values (setShapeValuesV2),
    "int32" where it converts them to 32 bits (TensorRT before 10.11)."""
    key = getattr(lib, "__name__", str(lib))
    if key not in _APIS:
        profile = builder.create_optimization_profile()
        try:
            profile.set_shape_input("__farm_int64_probe__", [_PROBE], [_PROBE], [_PROBE])
            back = profile.get_shape_input("__farm_int64_probe__")
            _APIS[key] = "int64" if back and int(back[0][0]) == _PROBE else "int32"
        except (TypeError, OverflowError, RuntimeError):
            _APIS[key] = "int32"
    return _APIS[key]


def set_values(profile: Any, name: str, rng: Range, api: str) -> None:
    """``set_shape_input`` for one shape tensor, refusing what a 32-bit binding would truncate."""
    if api == "int32":
        too_big = [v for point in (rng.min, rng.opt, rng.max) for v in point if abs(v) > INT32_MAX]
        if too_big:
            raise EngineError(f"shape tensor {name!r} holds {too_big[0]}, past the 32-bit shape-value API of this "
                              "TensorRT version (64-bit values need TensorRT 10.11 or newer)")
    profile.set_shape_input(name, list(rng.min), list(rng.opt), list(rng.max))


def as_triple(values: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(v) for v in point) for point in values)
