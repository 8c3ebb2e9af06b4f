"""Accuracy gate: outputs of a configuration vs the fp32 ONNX Runtime
reference on the same inputs.

Default tolerances per precision (Polygraphy's 1e-5 default fails nearly
every fp16 run). A spec's ``accuracy`` block overrides them.

| precision | max rel. L2 error          | min cosine              |
| fp32      | 1e-4                       | 0.9999                  |
| fp16      | 20.48 u = 1e-2 (u = 2^-11) | sqrt(1 - 1e-2^2)        |
| bf16      | 20.48 u = 8e-2 (u = 2^-8)  | sqrt(1 - 8e-2^2)        |
| int8/fp8  | 1e-1                       | 0.99                    |

fp16 and bf16 get the same multiple of their unit roundoff u (2^-11 and
2^-8: 11 and 8 significand bits). A float network's error is rounding
error propagated through its layers, so it grows with u. On the H200 panel
(tests/real_models.py; benchmarks/results/torch_panel_h200_2026-12-03.md)
the two precisions' rel L2, in units of their own u, were within 0-7.2 u of
each other on every model and batch (largest 19.9 u fp16 and 14.4 u bf16,
both PP-OCR det at batch 1); bf16/fp16 was 3.8-8.5x (2026-12-02: 5.3-8.5x).
20.48 u is the fp16 gate the farm always had (1e-2); bf16's old 2e-2 was
5.1 u, four times stricter in units of its own rounding, and failed PP-OCR
det/rec/cls at 6.2-12.4 u while rec and cls passed in fp16 at 2.9-12.2 u.

Causes looked for first (benchmarks/precision_probe.py, CPU, every node's
output rounded; benchmarks/results/precision_probe_cpu_2026-12-03.md): a
BatchNorm variance of 9.8e7 overflowed fp16 (PP-OCR det's all-zero output),
fixed at conversion (static_converters.FoldedBatchNorm). After it, keeping
one op class in fp32 at a time (BatchNorm, LayerNorm's ReduceMean/Pow/Sqrt,
Softmax, Sigmoid/HardSigmoid, GlobalAveragePool, the output head) changed
no model's error by more than 7 %, and rounding to 11 significand bits with
float32's exponent range gave PP-OCR det exactly its fp16 error (2.17e-2):
no overflow or underflow left, only rounding spread over every layer. (The
probe rounds every node's output, so it overstates: PP-OCR det fp16 is 44 u
there, 8.7-19.9 u on the H200, where Inductor's fused kernels keep
intermediates in float32.)

The cosine bound is the one the rel L2 bound implies: an output within
rel L2 r of the reference has cosine >= sqrt(1 - r^2), so the two never
disagree; a spec that sets only ``max_rel_error`` gets the cosine of that
bound. What bf16's gate still catches: an all-zero or constant output (rel
L2 1), NaN/inf from an overflow (never <= a bound), a wrong sign, layout or
missing layer (rel L2 of order 1), a scale error above 8 %. What it cannot
tell from rounding: an error below 8 % of the output's norm (e.g. a 5 %
scale error); a spec asks for less with ``max_rel_error``. fp32 (algorithm
and accumulation-order differences, TF32 off) and int8/fp8 (quantization
scales, not rounding) are not derived from u.
"""

from __future__ import annotations

import math

import numpy as np

# Precisions whose model is made by calibration on inputs: checked on
# synthetic inputs they are ``unchecked`` (reason "synthetic inputs"), never
# ``pass``, unless the spec sets ``accuracy.synthetic_ok`` (issue 22: a
# detector calibrated on uniform noise passed and detected nothing on real
# images).
CALIBRATED = ("int8", "fp8")
SYNTHETIC_REASON = "synthetic inputs"

GATE_ROUNDOFFS = 20.48  # fp16/bf16 max rel L2 in units of the precision's unit roundoff
UNIT_ROUNDOFF = {"fp16": 2.0 ** -11, "bf16": 2.0 ** -8}


def implied_cosine(max_rel_error: float) -> float:
    """The least cosine of an output within rel L2 ``max_rel_error`` of the reference."""
    return math.sqrt(max(0.0, 1.0 - max_rel_error ** 2))


def _float_gate(precision: str) -> dict[str, float]:
    bound = GATE_ROUNDOFFS * UNIT_ROUNDOFF[precision]
    return {"max_rel_error": bound, "min_cosine": implied_cosine(bound)}


DEFAULT_TOLERANCES = {
    "fp32": {"max_rel_error": 1e-4, "min_cosine": 0.9999},
    "fp16": _float_gate("fp16"),
    "bf16": _float_gate("bf16"),
    "int8": {"max_rel_error": 1e-1, "min_cosine": 0.99},
    "fp8": {"max_rel_error": 1e-1, "min_cosine": 0.99},
}


def tolerances(precision: str, accuracy_cfg: dict) -> dict[str, float | None]:
    base = dict(DEFAULT_TOLERANCES.get(precision, DEFAULT_TOLERANCES["fp32"]))
    base.setdefault("max_abs_error", None)
    for key in ("max_rel_error", "max_abs_error", "min_cosine"):
        if accuracy_cfg.get(key) is not None:
            base[key] = accuracy_cfg[key]
    if precision in UNIT_ROUNDOFF and accuracy_cfg.get("max_rel_error") is not None \
            and accuracy_cfg.get("min_cosine") is None:
        base["min_cosine"] = implied_cosine(base["max_rel_error"])
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
    ``reference``, never ``pass``. A job built with knobs of its own (ONNX
    Runtime's graph optimisation level, say: a search's knob axis) is not the
    reference's default session and is compared like any other (recorded:
    ORT fp32 at level ``basic`` 0.28 rel L2 from the reference on PP-OCRv4
    det, labelled ``reference`` before)."""
    reference = (config.get("accuracy") or {}).get("reference") or "onnxruntime"
    return config.get("backend") == reference and config.get("precision") == "fp32" and not config.get("build")
