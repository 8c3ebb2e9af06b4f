"""Sweep specs: load from YAML or CLI flags, validate, and resolve.

Validation messages name the field (``spec field 'precisions[1]': ...``) and
the allowed values. Shapes are checked against the model's inputs here, at
submit time, so nothing is queued that cannot run.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from farm.errors import SpecError
from farm.scenarios import ScenarioSpec, parse_scenarios
from farm.safe_yaml import first_unstorable, load_yaml, read_spec_text
from farm.search.config import SearchConfig, parse_search
from farm.spec_schema import PRECISIONS, SPEC_SCHEMA

TOP_LEVEL_KEYS = tuple(SPEC_SCHEMA["properties"])


@dataclass(frozen=True)
class ShapeRange:
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def with_batch(self, batch: int) -> "ShapeRange":
        def put(shape: tuple[int, ...]) -> tuple[int, ...]:
            return (batch,) + tuple(shape[1:])
        return ShapeRange(put(self.min), put(self.opt), put(self.max))

    def to_json(self) -> dict:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


@dataclass(frozen=True)
class Profile:
    name: str
    inputs: dict[str, ShapeRange]

    def to_json(self) -> dict:
        return {"name": self.name, "inputs": {k: v.to_json() for k, v in self.inputs.items()}}


@dataclass(frozen=True)
class MeasureConfig:
    """trtexec defaults: 200 ms warm-up, at least 3 s and 10 iterations.
    ``None`` knobs mean "the backend's default"."""

    warmup_ms: float = 200.0
    duration_ms: float = 3000.0
    iterations: int = 10
    cuda_graph: bool | None = None
    end_to_end: bool | None = None
    l2_flush: bool | None = None
    sync: str | None = None
    max_cv: float = 0.025
    max_remeasure: int = 2
    streams: int = 1  # concurrent streams, one model copy each (trtexec --infStreams); >1 reports aggregate throughput
    layer_profile: bool = False  # a per-layer profiling run after the timed run (layer-profile artifact)


@dataclass(frozen=True)
class AccuracyConfig:
    """``None`` tolerances mean the per-precision defaults (farm.accuracy)."""

    reference: str = "onnxruntime"
    max_rel_error: float | None = None
    max_abs_error: float | None = None
    min_cosine: float | None = None
    enabled: bool = True
    # Issue 22. Left out of a job's configuration (and key) at these defaults.
    synthetic_ok: bool = False  # a calibrated precision checked on synthetic inputs may pass
    samples: int | None = None  # evaluation rows of the data file (None: every row left, up to 256)
    metrics: tuple = ()  # task metrics per output (farm.task_metrics), dicts as in the spec


@dataclass(frozen=True)
class SweepSpec:
    name: str
    model: Path
    backends: tuple[str, ...] = ("onnxruntime",)
    precisions: tuple[str, ...] = ("fp32",)
    batch_sizes: tuple[int, ...] = ()  # empty: each profile's opt batch, else the model's own (farm.expand)
    profiles: tuple[Profile, ...] = ()
    devices: tuple[str, ...] = ("any",)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    accuracy: AccuracyConfig = field(default_factory=AccuracyConfig)
    # samples (rows; without data: synthetic batches, 8), seed, method (or a list: an axis), allow_overlap
    calibration: dict = field(default_factory=lambda: {"seed": 0})
    build: dict[str, dict[str, Any]] = field(default_factory=dict)
    timeouts: dict[str, float] = field(default_factory=dict)
    data: Path | None = None
    streams: tuple[int, ...] = ()  # sweep axis over measure.streams; empty: measure.streams only
    search: SearchConfig | None = None  # None: brute force, no finals (farm/search)
    scenarios: ScenarioSpec | None = None  # None: fixed-batch timing only (farm/scenarios.py)

    def to_json(self) -> dict:
        data = asdict(self)
        data["model"] = str(self.model)
        data["data"] = str(self.data) if self.data else None
        data["profiles"] = [p.to_json() for p in self.profiles]
        for key in ("backends", "precisions", "batch_sizes", "devices", "streams"):
            data[key] = list(data[key])
        return data


def _field_path(parts) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "spec"


def _schema_error_message(error) -> str:
    if error.validator in ("oneOf", "anyOf") and error.context:
        return _alternatives_message(error)
    where = _field_path(error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(error.schema.get("properties", {})) or "none"
        place = "spec" if where == "spec" else f"spec field '{where}'"
        return f"unknown key '{extra[0]}' in {place} (allowed: {allowed})"
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"spec field '{where}': {error.instance!r} is not allowed (allowed: {allowed})"
    if error.validator == "required":
        missing = next((k for k in error.validator_value if k not in error.instance), "?")
        place = "spec" if where == "spec" else f"spec field '{where}'"
        return f"{place} is missing the required key '{missing}'"
    return f"spec field '{where}': {_bounded_message(error)}"


def _alternatives_message(error) -> str:
    """A value matching none of ``oneOf``'s forms: if it has the type of one
    form, that form's complaint (e.g. too long); else which types would do."""
    typed = [e for e in error.context if not (e.validator == "type" and not e.relative_path)]
    if typed:
        return _schema_error_message(min(typed, key=lambda e: len(e.relative_path)))
    types = " or ".join(repr(e.validator_value) for e in error.context if e.validator == "type")
    return f"spec field '{_field_path(error.absolute_path)}': {_short(error.instance)} is not of type {types}"


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _bounded_message(error) -> str:
    """jsonschema's message, without quoting a huge value whole."""
    value, bound = error.instance, error.validator_value
    if error.validator == "maxLength":
        return f"{len(value)} characters is too long (at most {bound})"
    if error.validator == "maxItems":
        return f"{len(value)} items is too many (at most {bound})"
    if error.validator == "type":
        return f"{_short(value)} is not of type {bound!r}"
    if error.validator == "pattern":
        return f"{_short(value)} does not match {bound!r}"
    if error.validator == "maximum":
        return f"{_short(value)} is greater than the maximum of {bound}"
    if error.validator == "minimum":
        return f"{_short(value)} is less than the minimum of {bound}"
    message = error.message
    return message if len(message) <= 300 else message[:300] + "..."


@functools.lru_cache(maxsize=1)
def _strict_validator():
    """JSON Schema's 'integer' admits 2.0 (a float with no fraction); a
    batch size of 2.0 then reached the workers as a float and failed every
    job. Here an integer is an int, never a float or a bool."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(base, type_checker=checker)


def _check_schema(raw: dict) -> None:
    import jsonschema

    validator = _strict_validator()(SPEC_SCHEMA)
    errors = sorted(validator.iter_errors(raw), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        raise SpecError(_schema_error_message(errors[0]))


def _resolve_model_path(model: str, base_dir: Path | None) -> Path:
    path = Path(model).expanduser()
    if path.is_absolute() or base_dir is None:
        return path
    beside_spec = base_dir / path
    # Relative paths are read beside the spec file first (like docker-compose),
    # then from the working directory.
    return beside_spec if beside_spec.exists() or not path.exists() else path


def _as_tuple(value, default) -> tuple:
    if value is None:
        return default
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _parse_profiles(raw: list[dict]) -> tuple[Profile, ...]:
    profiles, seen = [], set()
    for index, item in enumerate(raw):
        if item["name"] in seen:
            raise SpecError(f"spec field 'profiles[{index}].name': duplicate profile name {item['name']!r}")
        seen.add(item["name"])
        inputs = {}
        for input_name, rng in item["inputs"].items():
            where = f"profiles[{index}].inputs.{input_name}"
            shape = ShapeRange(tuple(rng["min"]), tuple(rng["opt"]), tuple(rng["max"]))
            _check_range(shape, where)
            inputs[input_name] = shape
        profiles.append(Profile(item["name"], inputs))
    return tuple(profiles)


def _check_range(shape: ShapeRange, where: str) -> None:
    if not len(shape.min) == len(shape.opt) == len(shape.max):
        raise SpecError(f"spec field '{where}': min, opt and max must have the same rank")
    for axis, (lo, mid, hi) in enumerate(zip(shape.min, shape.opt, shape.max)):
        if lo <= 0:
            raise SpecError(f"spec field '{where}': dimension {axis} must be > 0 (got {lo})")
        if not lo <= mid <= hi:
            raise SpecError(
                f"spec field '{where}': dimension {axis} needs min <= opt <= max (got {lo}, {mid}, {hi})"
            )


def parse_spec(raw: Any, base_dir: Path | None = None) -> SweepSpec:
    """Validate a spec mapping (already parsed from YAML/JSON) into a SweepSpec."""
    if not isinstance(raw, dict):
        raise SpecError("a sweep spec must be a mapping of keys to values")
    unstorable = first_unstorable(raw)
    if unstorable:
        raise SpecError(f"spec field '{unstorable[0]}': {unstorable[1]}")
    _check_schema(raw)
    for index, batch in enumerate(raw.get("batch_sizes", [])):
        if batch <= 0:
            raise SpecError(f"spec field 'batch_sizes[{index}]': batch size must be > 0 (got {batch})")
    model = _resolve_model_path(raw["model"], base_dir)
    measure = MeasureConfig(**raw.get("measure", {}))
    accuracy = _accuracy(raw.get("accuracy", {}))
    calibration = {"seed": 0, **raw.get("calibration", {})}
    devices = raw.get("devices", "any")
    return SweepSpec(
        name=raw.get("name") or model.stem,
        model=model,
        backends=_dedupe(_as_tuple(raw.get("backends"), ("onnxruntime",))),
        precisions=_dedupe(_as_tuple(raw.get("precisions"), ("fp32",))),
        # Empty: not given; expand() picks each profile's opt batch, else the model's own.
        batch_sizes=_dedupe(_as_tuple(raw.get("batch_sizes"), ())),
        profiles=_parse_profiles(raw.get("profiles", [])),
        devices=_as_tuple(devices, ("any",)),
        measure=measure,
        accuracy=accuracy,
        calibration=calibration,
        build=dict(raw.get("build", {})),
        timeouts=dict(raw.get("timeouts", {})),
        data=_resolve_model_path(raw["data"], base_dir) if raw.get("data") else None,
        streams=_dedupe(_as_tuple(raw.get("streams"), ())),
        search=parse_search(raw["search"]) if "search" in raw else None,
        scenarios=parse_scenarios(raw["scenarios"]) if "scenarios" in raw else None,
    )


def _accuracy(raw: dict) -> AccuracyConfig:
    from farm.accuracy_spec import parse_metrics

    values = dict(raw)
    if "metrics" in values:
        values["metrics"] = parse_metrics(values["metrics"])
    return AccuracyConfig(**values)


def _dedupe(values: tuple) -> tuple:
    return tuple(dict.fromkeys(values))


def load_spec(path: str | Path) -> SweepSpec:
    path = Path(path)
    raw = load_yaml(read_spec_text(path), path)
    return parse_spec(raw, base_dir=path.parent)


def parse_shape(text: str) -> list[int]:
    try:
        return [int(part) for part in text.lower().split("x")]
    except ValueError:
        raise SpecError(f"bad shape {text!r}: write dimensions like 1x3x224x224") from None


def parse_profile_flag(text: str) -> dict:
    """``NAME:input=MIN/OPT/MAX[;input2=...]`` (shapes as 1x3x224x224)."""
    name, sep, body = text.partition(":")
    if not sep or not body:
        raise SpecError(f"bad --profile {text!r}: write NAME:input=MIN/OPT/MAX, shapes like 1x3x224x224")
    inputs = {}
    for part in body.split(";"):
        input_name, eq, shapes = part.partition("=")
        triple = shapes.split("/")
        if not eq or len(triple) != 3:
            raise SpecError(f"bad --profile {text!r}: each input needs input=MIN/OPT/MAX")
        if input_name.strip() in inputs:
            raise SpecError(f"bad --profile {text!r}: input {input_name.strip()!r} is given twice")
        lo, mid, hi = (parse_shape(s) for s in triple)
        inputs[input_name.strip()] = {"min": lo, "opt": mid, "max": hi}
    return {"name": name.strip(), "inputs": inputs}


def known_precisions() -> tuple[str, ...]:
    return PRECISIONS
