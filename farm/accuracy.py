"""Accuracy gate: outputs of a configuration vs the fp32 ONNX Runtime
reference on the same inputs.

Default tolerances per precision (Polygraphy's 1e-5 default fails nearly
every fp16 run; these follow what reduced precisions actually achieve on
real CNNs and transformers). A spec's ``accuracy`` block overrides them.

| precision | max rel. L2 error | min cosine |
| fp32      | 1e-4              | 0.9999     |
| fp16/bf16 | 1e-2 (bf16 2e-2)  | 0.999      |
| int8/fp8  | 1e-1              | 0.99       |
"""

from __future__ import annotations

import numpy as np

DEFAULT_TOLERANCES = {
    "fp32": {"max_rel_error": 1e-4, "min_cosine": 0.9999},
    "fp16": {"max_rel_error": 1e-2, "min_cosine": 0.999},
    "bf16": {"max_rel_error": 2e-2, "min_cosine": 0.999},
    "int8": {"max_rel_error": 1e-1, "min_cosine": 0.99},
    "fp8": {"max_rel_error": 1e-1, "min_cosine": 0.99},
}


def tolerances(precision: str, accuracy_cfg: dict) -> dict[str, float | None]:
    base = dict(DEFAULT_TOLERANCES.get(precision, DEFAULT_TOLERANCES["fp32"]))
    base.setdefault("max_abs_error", None)
    for key in ("max_rel_error", "max_abs_error", "min_cosine"):
        if accuracy_cfg.get(key) is not None:
            base[key] = accuracy_cfg[key]
    return base


def _compare_exact(actual, expected) -> dict[str, float]:
    """Non-numeric outputs (strings, objects) are right or wrong: the
    mismatch fraction stands in for the relative error."""
    a, e = np.asarray(actual).ravel(), np.asarray(expected).ravel()
    if a.shape != e.shape:
        raise ValueError(f"output shapes differ: {np.shape(actual)} vs {np.shape(expected)}")
    wrong = float(np.mean(a != e)) if a.size else 0.0
    return {"max_abs_error": 1.0 if wrong else 0.0, "rel_l2_error": wrong, "cosine": 1.0 - wrong}


def compare_arrays(actual, expected) -> dict[str, float]:
    if np.asarray(expected).dtype.kind in "USOa" or np.asarray(actual).dtype.kind in "USOa":
        return _compare_exact(actual, expected)
    a = np.asarray(actual, dtype=np.float64).ravel()
    e = np.asarray(expected, dtype=np.float64).ravel()
    if a.shape != e.shape:
        raise ValueError(f"output shapes differ: {np.shape(actual)} vs {np.shape(expected)}")
    if a.size == 0:
        return {"max_abs_error": 0.0, "rel_l2_error": 0.0, "cosine": 1.0}
    diff = a - e
    ref_norm = float(np.linalg.norm(e))
    diff_norm = float(np.linalg.norm(diff))
    denom = float(np.linalg.norm(a)) * ref_norm
    if denom > 0:
        cosine = float(np.dot(a, e) / denom)
    else:
        cosine = 1.0 if diff_norm == 0 else 0.0
    return {
        "max_abs_error": float(np.max(np.abs(diff))),
        "rel_l2_error": diff_norm / ref_norm if ref_norm > 0 else diff_norm,
        "cosine": cosine,
    }


def is_reference(config: dict) -> bool:
    """Is this job the reference itself (ONNX Runtime fp32 on the CPU, or
    whichever backend ``accuracy.reference`` names, at fp32)? Comparing it
    with the reference compares it with itself: its status is
    ``reference``, never ``pass``."""
    reference = (config.get("accuracy") or {}).get("reference") or "onnxruntime"
    return config.get("backend") == reference and config.get("precision") == "fp32"


def evaluate(outputs: dict, reference: dict, precision: str, accuracy_cfg: dict,
             reference_job: bool = False) -> dict:
    """Per-output metrics, the worst of each over outputs, and the verdict:
    ``status`` pass | fail, or reference (``passed`` None) for the
    reference job itself."""
    per_output = {}
    for name, expected in reference.items():
        if name not in outputs:
            raise ValueError(f"output {name!r} missing from the backend's results")
        per_output[name] = compare_arrays(outputs[name], expected)
    worst = {
        "max_abs_error": max((m["max_abs_error"] for m in per_output.values()), default=0.0),
        "rel_l2_error": max((m["rel_l2_error"] for m in per_output.values()), default=0.0),
        "cosine": min((m["cosine"] for m in per_output.values()), default=1.0),
    }
    limits = tolerances(precision, accuracy_cfg)
    failures = []
    if limits["max_rel_error"] is not None and not worst["rel_l2_error"] <= limits["max_rel_error"]:
        failures.append(f"rel_l2_error {worst['rel_l2_error']:.3g} > {limits['max_rel_error']:.3g}")
    if limits["max_abs_error"] is not None and not worst["max_abs_error"] <= limits["max_abs_error"]:
        failures.append(f"max_abs_error {worst['max_abs_error']:.3g} > {limits['max_abs_error']:.3g}")
    if limits["min_cosine"] is not None and not worst["cosine"] >= limits["min_cosine"]:
        failures.append(f"cosine {worst['cosine']:.6f} < {limits['min_cosine']}")
    if reference_job:
        return {**worst, "passed": None, "status": "reference", "failures": failures, "tolerances": limits,
                "per_output": per_output}
    return {**worst, "passed": not failures, "status": "fail" if failures else "pass", "failures": failures,
            "tolerances": limits, "per_output": per_output}
