"""The JSON Schema of a sweep spec (published as ``farm spec schema``).

Structure is checked here; meaning (shapes against the model, backend names
from the installed plugins) is checked in ``farm.spec``.
"""

from farm.accuracy_spec import ACCURACY_PROPERTIES, CALIBRATION_PROPERTIES
from farm.scenarios import SCENARIOS_SCHEMA
from farm.search.config import SEARCH_SCHEMA

PRECISIONS = ("fp32", "fp16", "bf16", "int8", "fp8", "model")  # model: the model's own types (farm/quantized.py)
# Bounds the database columns impose (INTEGER, VARCHAR(n)); checked here so
# a spec the database would refuse never gets as far as a row.
INT32_MAX = 2**31 - 1
NAME_CHARS = 255  # sweeps.name
LABEL_CHARS = 128  # jobs.profile, jobs.device_class
PATH_CHARS = 4096

_dims = {"type": "array", "items": {"type": "integer", "maximum": INT32_MAX}, "minItems": 1, "maxItems": 16}
_shape_range = {
    "type": "object",
    "additionalProperties": False,
    "required": ["min", "opt", "max"],
    "properties": {"min": _dims, "opt": _dims, "max": _dims},
}
_profile = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "inputs"],
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$", "maxLength": LABEL_CHARS},
        "inputs": {"type": "object", "additionalProperties": _shape_range, "propertyNames": {"maxLength": 1024}},
    },
}
_measure = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "warmup_ms": {"type": "number", "minimum": 0},
        "duration_ms": {"type": "number", "minimum": 0},
        "iterations": {"type": "integer", "minimum": 1, "maximum": 10_000_000},
        "cuda_graph": {"type": "boolean"},
        "end_to_end": {"type": "boolean"},
        "l2_flush": {"type": "boolean"},
        "sync": {"enum": ["spin", "blocking"]},
        "max_cv": {"type": "number", "exclusiveMinimum": 0},
        "max_remeasure": {"type": "integer", "minimum": 0, "maximum": 100},
        "streams": {"type": "integer", "minimum": 1, "maximum": 64},
        "layer_profile": {"type": "boolean"},
    },
}
_accuracy = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "reference": {"enum": ["onnxruntime"]},
        "max_rel_error": {"type": "number", "minimum": 0},
        "max_abs_error": {"type": "number", "minimum": 0},
        "min_cosine": {"type": "number", "minimum": -1, "maximum": 1},
        "enabled": {"type": "boolean"},
        **ACCURACY_PROPERTIES,
    },
}
_names = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": LABEL_CHARS}, "minItems": 1}

SPEC_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://engine-farm.dev/schemas/sweep-spec.json",
    "title": "Engine Farm sweep spec",
    "type": "object",
    "additionalProperties": False,
    "required": ["model"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": NAME_CHARS},
        "model": {"type": "string", "minLength": 1, "maxLength": PATH_CHARS},
        "data": {
            "description": "An .npz file of input samples, one array per model input (first axis = "
            "samples). Used for the accuracy check, timing and int8 calibration instead of random data.",
            "type": "string",
            "minLength": 1,
            "maxLength": PATH_CHARS,
        },
        "backends": _names,
        "precisions": {"type": "array", "items": {"enum": list(PRECISIONS)}, "minItems": 1},
        "batch_sizes": {"type": "array", "items": {"type": "integer", "maximum": INT32_MAX}, "minItems": 1},
        "profiles": {"type": "array", "items": _profile},
        "devices": {"oneOf": [{"type": "string", "minLength": 1, "maxLength": LABEL_CHARS}, _names]},
        "measure": _measure,
        "accuracy": _accuracy,
        "calibration": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "samples": {"type": "integer", "minimum": 1, "maximum": 65536},
                "seed": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
                **CALIBRATION_PROPERTIES,
            },
        },
        "build": {
            "description": "Per-backend build knobs: {backend: {knob: value}}. "
            "An absent knob means the backend's default.",
            "type": "object",
            "additionalProperties": {"type": "object"},
        },
        "search": SEARCH_SCHEMA,
        "scenarios": SCENARIOS_SCHEMA,
        "timeouts": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "build_s": {"type": "number", "exclusiveMinimum": 0},
                "measure_s": {"type": "number", "exclusiveMinimum": 0},
            },
        },
        "streams": {
            "description": "Sweep axis over measure.streams: one job per value (e.g. [1, 2, 4]).",
            "type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 64}, "minItems": 1,
        },
    },
}
