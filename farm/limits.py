"""Size limits a sweep must meet before any row or blob is written.

A spec that passes the schema can still describe jobs no worker can run
or no column can hold: a model whose fixed batch is 2^31 (an INTEGER
overflow), a dynamic model whose inner dim is 2^31 (8 GiB of input per
sample), a million-job cross product. These are refused at submit, with
the limit and the variable that raises it.
"""

from __future__ import annotations

import math

from farm.config import _number
from farm.errors import SpecError
from farm.spec_schema import INT32_MAX

_ITEM_BYTES = {"bool": 1, "uint8": 1, "int8": 1, "uint16": 2, "int16": 2, "float16": 2, "bfloat16": 2,
               "int32": 4, "uint32": 4, "float32": 4, "int64": 8, "uint64": 8, "float64": 8}


def max_input_bytes() -> int:
    """FARM_MAX_INPUT_MB: the inputs one job feeds per inference, at its profile's max shapes."""
    return int(_number("FARM_MAX_INPUT_MB", 4096.0) * (1 << 20))


def max_jobs() -> int:
    """FARM_MAX_JOBS: jobs one sweep may expand to."""
    return int(_number("FARM_MAX_JOBS", 100_000.0))


def input_bytes(dtypes: dict[str, str], shapes: dict[str, dict]) -> int:
    """Bytes of every input at its max shape (unknown element types count 8 bytes)."""
    return sum(math.prod(shape["max"]) * _ITEM_BYTES.get(dtypes.get(name, ""), 8) for name, shape in shapes.items())


def check_plans(plans, model) -> None:
    """``plans`` (farm.expand.JobPlan) of one sweep against every limit."""
    if len(plans) > max_jobs():
        raise SpecError(f"the sweep expands to {len(plans):,} jobs; at most {max_jobs():,} are allowed "
                        f"(FARM_MAX_JOBS); split it or name fewer batch sizes, profiles or devices")
    _check_backends_take(plans, model)
    dtypes = {info.name: info.dtype for info in model.inputs}
    limit = max_input_bytes()
    for plan in plans:
        if plan.batch_size > INT32_MAX:
            raise SpecError(f"batch size {plan.batch_size} (the model's own batch dimension) is above "
                            f"{INT32_MAX}, the largest batch the farm can record")
        needed = input_bytes(dtypes, plan.shapes)
        if needed > limit:
            raise SpecError(
                f"a job of profile '{plan.profile_name}' at batch {plan.batch_size} feeds {_size(needed)} of "
                f"inputs per inference ({_shapes(plan.shapes)}); the limit is {_size(limit)} (FARM_MAX_INPUT_MB)")


def _check_backends_take(plans, model) -> None:
    """Every model property a backend cannot take is refused here, at
    submit, not by a failure of every job on a worker."""
    from farm.backends import backend_config

    seen = set()
    for plan in plans:
        kind = plan.device_class.split(".", 1)[0]
        if (plan.backend, kind) in seen:
            continue
        seen.add((plan.backend, kind))
        reason = backend_config(plan.backend).refuses_model(model, kind, plan.config.get("build") or {})
        if reason:
            name = (model.source or {}).get("name") or model.path.name  # the user's file, not its conversion
            raise SpecError(f"backend {plan.backend} cannot take {name} on {kind}: {reason}; drop it "
                            f"from the sweep's backends or change the model")


def _size(n: int) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _shapes(shapes: dict[str, dict]) -> str:
    return ", ".join(f"{name} {'x'.join(map(str, s['max']))}" for name, s in shapes.items())
