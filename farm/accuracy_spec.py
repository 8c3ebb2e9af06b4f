"""The spec's accuracy and calibration fields of issue 22, checked at submit.

``accuracy.metrics`` declares task metrics per output (farm.task_metrics);
``accuracy.samples`` bounds the evaluation rows and ``accuracy.synthetic_ok``
lets a calibrated precision pass on synthetic inputs; ``calibration``
gains ``method`` (minmax | entropy | percentile, or a list of them: a sweep
axis of the calibrated precisions) and ``allow_overlap``.
"""

from __future__ import annotations

from farm.errors import SpecError
from farm.task_metrics import BUILTIN, ERROR_STATS, STATISTICS

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
DEFAULT_METHOD = "minmax"
_USER_METRIC = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"

METRIC_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["metric"],
    "properties": {
        "output": {"type": "string", "minLength": 1, "maxLength": 1024},
        "metric": {"oneOf": [{"enum": list(BUILTIN)}, {"type": "string", "pattern": _USER_METRIC, "maxLength": 200}]},
        "statistic": {"enum": list(STATISTICS)},
        "quantile": {"type": "number", "minimum": 0, "maximum": 1},
        "min": {"type": "number"},
        "max": {"type": "number"},
        "k": {"type": "integer", "minimum": 1, "maximum": 100000},
        "threshold": {"type": "number"},
        "atol": {"type": "number", "minimum": 0},
        "rtol": {"type": "number", "minimum": 0},
        "error_stat": {"enum": list(ERROR_STATS)},
        "blank": {"type": "integer", "minimum": 0},
    },
}
ACCURACY_PROPERTIES = {
    "synthetic_ok": {"type": "boolean"},
    "samples": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
    "metrics": {"type": "array", "items": METRIC_SCHEMA, "maxItems": 256},
}
_method = {"enum": list(CALIBRATION_METHODS)}
CALIBRATION_PROPERTIES = {
    "method": {"oneOf": [_method, {"type": "array", "items": _method, "minItems": 1}]},
    "allow_overlap": {"type": "boolean"},
}


def parse_metrics(raw: list) -> tuple:
    """Metric entries as stored in a job's configuration (sorted keys, no Nones)."""
    entries = []
    for index, entry in enumerate(raw):
        if entry.get("min") is not None and entry.get("max") is not None:
            raise SpecError(f"spec field 'accuracy.metrics[{index}]': give min or max, not both")
        if entry.get("statistic") == "quantile" and entry.get("quantile") is None:
            raise SpecError(f"spec field 'accuracy.metrics[{index}]': statistic quantile needs 'quantile' (0..1)")
        entries.append({k: entry[k] for k in sorted(entry) if entry[k] is not None})
    return tuple(entries)


def methods(calibration: dict) -> tuple[str, ...]:
    method = calibration.get("method", DEFAULT_METHOD)
    return tuple(dict.fromkeys(method if isinstance(method, (list, tuple)) else [method]))


def check_accuracy_spec(spec, model) -> None:
    """Declared metrics name outputs the model has; user metrics import."""
    from farm.task_metrics import is_user_metric, user_metric

    for index, entry in enumerate(spec.accuracy.metrics):
        output = entry.get("output", "*")
        if output != "*" and output not in model.outputs:
            raise SpecError(f"spec field 'accuracy.metrics[{index}].output': the model has no output {output!r} "
                            f"(outputs: {', '.join(model.outputs)})")
        if is_user_metric(entry["metric"]):
            try:
                user_metric(entry["metric"])
            except Exception as exc:  # the user's module: any import failure is theirs
                raise SpecError(f"spec field 'accuracy.metrics[{index}].metric': cannot import "
                                f"{entry['metric']!r} ({type(exc).__name__}: {exc}); the module must be importable "
                                f"here and on every worker") from None


def synthetic_note(spec) -> str | None:
    """The one line a submission says when calibrated precisions will see synthetic inputs only."""
    from farm.accuracy import CALIBRATED

    asked = [p for p in spec.precisions if p in CALIBRATED]
    if spec.data is not None or not asked or not spec.accuracy.enabled:
        return None
    if spec.accuracy.synthetic_ok:
        return (f"note: no 'data:' in the spec: {'/'.join(asked)} is calibrated and checked on synthetic inputs, "
                f"and accuracy.synthetic_ok lets it pass there")
    return (f"note: no 'data:' in the spec: {'/'.join(asked)} is calibrated and checked on synthetic inputs, so "
            f"its accuracy is 'unchecked (synthetic inputs)' and 'farm best' will not pick it; give real samples "
            f"with 'data: samples.npz' (or set accuracy.synthetic_ok: true)")
