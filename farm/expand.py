"""Check a spec's shapes against the model and expand it into jobs.

A job is one (model, backend, precision, batch size, profile, device class).
Its key hashes everything that changes the result, so a finished job is
never built or measured twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from farm.errors import SpecError
from farm.model_info import InputInfo, ModelInfo
from farm.spec import Profile, ShapeRange, SweepSpec

DEFAULT_PROFILE = Profile("default", {})


@dataclass(frozen=True)
class JobPlan:
    backend: str
    precision: str
    batch_size: int
    profile_name: str
    shapes: dict[str, dict]  # input -> {min, opt, max} with the job's batch applied
    device_class: str
    config: dict  # the full resolved configuration the key hashes
    workload: str = ""  # what is computed: model + profile shapes (batch free); see workload_key

    @property
    def key(self) -> str:
        return job_key(self.config)


def job_key(config: dict) -> str:
    """The configuration's identity. It holds no library version: the
    environment a result is valid for is what the *worker* reports, checked
    at reuse time (farm.service.ClassEnvironments), not what the submitting
    host happens to have installed."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def workload_key(model_sha256: str, profile: Profile) -> str:
    """``<profile>:<hash>``: the same model on the same profile shapes is one
    workload, whatever the batch size (a free axis inside the profile);
    configurations are ranked only within one workload."""
    shapes = {name: shape.to_json() for name, shape in sorted(profile.inputs.items())}
    canonical = json.dumps({"model": model_sha256, "profile": profile.name, "inputs": shapes}, sort_keys=True)
    return f"{profile.name}:{hashlib.sha256(canonical.encode()).hexdigest()[:10]}"


def _batched(info: InputInfo) -> bool:
    # An input of unknown rank takes its shape from the profile, axis 0 as batch.
    return info.rank is None or (info.rank > 0 and not info.is_fixed(0))


def _check_profile_input(info: InputInfo, shape: ShapeRange, where: str) -> None:
    if info.dims is None:
        return  # the model declares no shape: the profile's is taken as given
    if len(shape.min) != info.rank:
        raise SpecError(
            f"spec field '{where}': rank {len(shape.min)} does not match model input "
            f"'{info.name}' of rank {info.rank} (dims {_dims_text(info)})"
        )
    for axis, dim in enumerate(info.dims):
        if not info.is_fixed(axis) or (axis == 0 and _batched(info)):
            continue
        got = {shape.min[axis], shape.opt[axis], shape.max[axis]}
        if got != {dim}:
            raise SpecError(
                f"spec field '{where}': dimension {axis} is fixed to {dim} in the model "
                f"(dims {_dims_text(info)}), profile gives {sorted(got)}"
            )


def _dims_text(info: InputInfo) -> str:
    if info.dims is None:
        return "unknown"
    return "[" + ", ".join(str(d) if d is not None else "?" for d in info.dims) + "]"


def _example_shapes(info: InputInfo, batches: tuple[int, ...]) -> str | None:
    """``input=MIN/OPT/MAX`` the user can adapt: the sweep's batch range, fixed
    dims as they are, each other dim 32/64/128; None without a known rank."""
    if info.dims is None:
        return None
    low, high = min(batches or (1,)), max(batches or (1,))

    def shape(batch: int, size: int) -> str:
        dims = [d if info.is_fixed(a) else (batch if a == 0 else size) for a, d in enumerate(info.dims)]
        return "x".join(str(d) for d in dims)

    return f"{info.name}={shape(low, 32)}/{shape(high, 64)}/{shape(high, 128)}"


def _needs_shape(info: InputInfo) -> bool:
    """Dynamic beyond the batch axis (or of unknown rank): a profile must say its shape."""
    return info.dims is None or any(not info.is_fixed(a) for a in range(1, len(info.dims)))


def _missing_shapes_error(label: str, missing: list[InputInfo], batches: tuple[int, ...]) -> SpecError:
    """One error naming every input the profile lacks, with one --profile that covers them."""
    def why(info: InputInfo) -> str:
        return ("declares no shape in the model" if info.dims is None
                else f"has dims {_dims_text(info)}, dynamic beyond the batch axis")

    if len(missing) == 1:
        what = f"model input '{missing[0].name}', which {why(missing[0])}; add it to the profile"
    else:
        what = ("model inputs " + ", ".join(f"'{i.name}' (which {why(i)})" for i in missing)
                + "; add them to the profile")
    examples = [e for e in (_example_shapes(i, batches) for i in missing) if e]
    hint = f", e.g. --profile 'p:{';'.join(examples)}' (min/opt/max)" if examples else ""
    return SpecError(f"{label} gives no shape for {what}{hint}")


def check_profiles(spec: SweepSpec, model: ModelInfo) -> tuple[Profile, ...]:
    """Validate every profile against the model; return the profiles to use."""
    names = ", ".join(i.name for i in model.inputs)
    profiles = spec.profiles or (DEFAULT_PROFILE,)
    for index, profile in enumerate(profiles):
        for input_name, shape in profile.inputs.items():
            info = model.input(input_name)
            where = f"profiles[{index}].inputs.{input_name}"
            if info is None:
                raise SpecError(f"spec field '{where}': the model has no input '{input_name}' (inputs: {names})")
            _check_profile_input(info, shape, where)
        missing = [info for info in model.inputs if info.name not in profile.inputs and _needs_shape(info)]
        if missing:
            label = f"profile '{profile.name}'" if spec.profiles else "the spec (no profiles given)"
            raise _missing_shapes_error(label, missing, spec.batch_sizes or (default_batch(model),))
    return profiles


def shapes_for(model: ModelInfo, profile: Profile, batch: int) -> dict[str, dict] | None:
    """Shapes of every input for this batch size, or None if the batch is
    outside the profile's batch range (that pair is not a job)."""
    if _batch_axis_model(model) and batch != default_batch(model):
        return None
    shapes = {}
    for info in model.inputs:
        if info.name in profile.inputs:
            shape = profile.inputs[info.name]
            if _batched(info):
                if not shape.min[0] <= batch <= shape.max[0]:
                    return None
                shape = shape.with_batch(batch)
        else:
            dims = tuple(d if isinstance(d, int) and d > 0 else batch for d in info.dims)
            shape = ShapeRange(dims, dims, dims)
        shapes[info.name] = shape.to_json()
    return shapes


def _batch_axis_model(model: ModelInfo) -> bool:
    """A model with every input's batch fixed can only run that batch."""
    return not any(_batched(i) for i in model.inputs)


def default_batch(model: ModelInfo) -> int:
    """The batch a sweep runs when it names none, and the only one a model
    with no dynamic batch axis runs: its inputs' common leading dim, or 1
    where they have none in common (a shape tensor beside the data, say,
    which then run exactly as the model declares them)."""
    if not _batch_axis_model(model):
        return 1
    leading = {i.dims[0] for i in model.inputs if i.rank}
    return leading.pop() if len(leading) == 1 else 1


def _default_batches(model: ModelInfo, profiles) -> tuple[int, ...]:
    """Without batch_sizes: each profile's opt batch, else the model's own batch."""
    opts = {shape.opt[0] for profile in profiles for name, shape in profile.inputs.items()
            if (info := model.input(name)) is not None and _batched(info)}
    return tuple(sorted(opts)) or (default_batch(model),)


def expand(spec: SweepSpec, model: ModelInfo, device_classes: list[str]) -> list[JobPlan]:
    profiles = check_profiles(spec, model)
    pairs = []
    for batch in spec.batch_sizes or _default_batches(model, profiles):
        fitting = [(p, s) for p in profiles if (s := shapes_for(model, p, batch)) is not None]
        if not fitting:
            raise SpecError(f"spec field 'batch_sizes': batch size {batch} fits no profile ({_ranges(model, profiles)})")
        pairs.extend((batch, p, s) for p, s in fitting)
    plans = []
    measures = [_measure_json(spec, n) for n in (spec.streams or (spec.measure.streams,))]
    # Serving knobs (queue delay, instances) are axes like streams; no scenarios: no key (old keys hold).
    servings = spec.scenarios.job_configs() if spec.scenarios else [None]
    for device_class in device_classes:
        for backend in spec.backends:
            for precision, calibration in _precision_calibrations(spec):
                for (batch, profile, shapes), measure, serving in (
                        (p, m, v) for p in pairs for m in measures for v in servings):
                    config = {
                        "model_sha256": model.sha256,
                        "backend": backend,
                        "precision": precision,
                        "batch_size": batch,
                        "profile": {"name": profile.name, "inputs": shapes},
                        "build": spec.build.get(backend, {}),
                        "measure": measure,
                        "accuracy": _accuracy_json(spec),
                        "calibration": calibration,
                        "device_class": device_class,
                    }
                    if serving is not None:
                        config["serving"] = serving
                    plans.append(JobPlan(backend, precision, batch, profile.name, shapes, device_class, config,
                                         workload_key(model.sha256, profile)))
    return plans


# Accuracy fields added in issue 22: left out of the key at their defaults (as _LATER_KNOBS).
_LATER_ACCURACY = {"synthetic_ok": False, "samples": None, "metrics": ()}


def _accuracy_json(spec: SweepSpec) -> dict:
    values = asdict(spec.accuracy)
    values["metrics"] = [dict(m) for m in spec.accuracy.metrics]
    return {k: v for k, v in values.items()
            if not (k in _LATER_ACCURACY and (v == _LATER_ACCURACY[k] or v == []))}


def _precision_calibrations(spec: SweepSpec):
    """(precision, calibration settings) per job: the calibration method is
    an axis of the calibrated precisions only (the others carry the spec's
    block unchanged: their key does not move with it)."""
    from farm.accuracy import CALIBRATED
    from farm.accuracy_spec import methods

    plain = {k: v for k, v in spec.calibration.items() if k != "method"}
    for precision in spec.precisions:
        if precision in CALIBRATED:
            for method in methods(spec.calibration):
                yield precision, {**plain, "method": method}
        else:
            yield precision, spec.calibration


# Measure knobs added after jobs were first keyed: left out of the key at their default,
# so a job measured before they existed is still found (and reused) by its key.
_LATER_KNOBS = {"streams": 1, "layer_profile": False}


def _measure_json(spec: SweepSpec, streams: int) -> dict:
    measure = {**asdict(spec.measure), "streams": streams}
    return {k: v for k, v in measure.items() if not (k in _LATER_KNOBS and v == _LATER_KNOBS[k])}


def _ranges(model: ModelInfo, profiles) -> str:
    parts = []
    for profile in profiles:
        batched = [s for n, s in profile.inputs.items() if (i := model.input(n)) and _batched(i)]
        if batched:
            parts.append(f"'{profile.name}' allows batch {batched[0].min[0]}..{batched[0].max[0]}")
        elif _batch_axis_model(model):
            parts.append(f"the model's batch is fixed to {default_batch(model)}")
    # Said once each (a fixed batch was repeated once per profile), a long list cut with a count.
    parts = list(dict.fromkeys(parts))
    shown = "; ".join(parts[:5]) + (f"; and {len(parts) - 5} more profiles" if len(parts) > 5 else "")
    return shown or "no batch range"
