"""A search's space: every configuration the sweep could build, as
candidates with named axis values, grouped by device class and workload.

Ranking is per device class and workload (model + profile shapes): a search
compares configurations only inside one group. Axes are the job plan's
backend, precision, batch size (and streams, where a plan has them) plus the
build knobs ``search.axes`` names (``backend.knob: [values]``), which
multiply the spec's expansion.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from farm.planner import knob_variants, spec_variants  # noqa: F401 (the space's axes are the planner's variants)

ORDERED_AXES = ("batch_size", "streams")  # searched ascending; latency grows along them
# Expected speed, fastest first, per device kind (quick starts at the front).
PRECISION_SPEED = {"gpu": ("fp8", "int8", "fp16", "bf16", "fp32"), "cpu": ("int8", "fp32", "fp16", "bf16")}


@dataclass(frozen=True)
class Candidate:
    idx: int
    group: str  # "<device class>|<workload>"
    axes: dict  # axis name -> value
    plan: dict | None = None  # JobPlan fields (live searches); None in a replay

    def series(self) -> tuple:
        """Everything but the ordered axes: latency and memory grow along a series."""
        return (self.group,) + tuple((k, _key(v)) for k, v in sorted(self.axes.items()) if k not in ORDERED_AXES)


def _key(value) -> str:
    return json.dumps(value, sort_keys=True)


def workload_key(profile_name: str, shapes: dict) -> str:
    """Model + profile shapes without the batch axis (the batch is an axis)."""
    dims = {name: [list(rng["min"][1:]), list(rng["opt"][1:]), list(rng["max"][1:])]
            for name, rng in sorted(shapes.items())}
    return f"{profile_name}:{json.dumps(dims, separators=(',', ':'))}" if dims else profile_name


def plan_json(plan) -> dict:
    return {"backend": plan.backend, "workload": plan.workload, "precision": plan.precision,
            "batch_size": plan.batch_size, "profile_name": plan.profile_name, "shapes": plan.shapes,
            "device_class": plan.device_class, "config": plan.config}


def candidates_from_plans(variants: list[tuple[dict, list]]) -> list[Candidate]:
    """Candidates from (knob values, job plans) pairs; a knob of another
    backend is not an axis of this plan (the same plan is not repeated)."""
    out, seen = [], set()
    for variant, plans in variants:
        for plan in plans:
            knobs = {k: v for k, v in variant.items() if k.split(".", 1)[0] == plan.backend}
            config_key = _key(plan.config)
            if config_key in seen:
                continue
            seen.add(config_key)
            axes = {"backend": plan.backend, "precision": plan.precision, "batch_size": plan.batch_size, **knobs}
            axes["streams"] = int((plan.config.get("measure") or {}).get("streams", 1))
            group = f"{plan.device_class}|{workload_key(plan.profile_name, plan.shapes)}"
            out.append(Candidate(len(out), group, axes, plan_json(plan)))
    return out


def groups(candidates: list[Candidate]) -> dict[str, list[Candidate]]:
    out: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        out.setdefault(candidate.group, []).append(candidate)
    return out


def device_kind(group: str) -> str:
    return "gpu" if group.startswith("gpu.") else "cpu"


def axis_values(members: list[Candidate], axis: str) -> list:
    """An axis's values in search order: ordered axes ascending, precision by
    expected speed on the group's device kind, other axes as listed."""
    values = list(dict.fromkeys(_key(c.axes[axis]) for c in members if axis in c.axes))
    decoded = [json.loads(v) for v in values]
    if axis in ORDERED_AXES:
        return sorted(decoded)
    if axis == "precision":
        speed = PRECISION_SPEED[device_kind(members[0].group)]
        return sorted(decoded, key=lambda p: speed.index(p) if p in speed else len(speed))
    return decoded


def axis_names(members: list[Candidate]) -> list[str]:
    """Search order of the axes: batch/streams, precision, then the rest."""
    names = list(dict.fromkeys(k for c in members for k in c.axes))
    first = [a for a in ("batch_size", "streams", "precision") if a in names]
    return first + [a for a in names if a not in first]


def lookup(members: list[Candidate]) -> dict[str, Candidate]:
    return {point_key(c.axes): c for c in members}


def point_key(axes: dict) -> str:
    return _key({k: v for k, v in sorted(axes.items())})
