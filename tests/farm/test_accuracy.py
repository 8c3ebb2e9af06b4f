from __future__ import annotations

import numpy as np
import pytest

from farm.accuracy import compare_arrays, evaluate, tolerances


def test_metrics_of_a_known_perturbation():
    expected = np.array([3.0, 4.0])  # norm 5
    actual = np.array([3.0, 4.5])
    metrics = compare_arrays(actual, expected)
    assert metrics["max_abs_error"] == pytest.approx(0.5)
    assert metrics["rel_l2_error"] == pytest.approx(0.5 / 5)
    assert metrics["cosine"] == pytest.approx((9 + 18) / (5 * np.hypot(3, 4.5)))


def test_string_outputs_compare_exactly():
    metrics = compare_arrays(np.array(["a", "b", "x", "d"]), np.array(["a", "b", "c", "d"]))
    assert metrics == {"max_abs_error": 1.0, "rel_l2_error": 0.25, "cosine": 0.75}
    assert compare_arrays(np.array(["a"]), np.array(["a"]))["rel_l2_error"] == 0.0


def test_per_precision_defaults_and_overrides():
    assert tolerances("fp32", {})["max_rel_error"] == 1e-4
    assert tolerances("int8", {})["max_rel_error"] == 1e-1
    assert tolerances("fp16", {"max_rel_error": 0.5})["max_rel_error"] == 0.5
    result = evaluate({"y": np.array([1.0, 2.01])}, {"y": np.array([1.0, 2.0])}, "fp32", {})
    assert not result["passed"] and result["failures"][0].startswith("y: rel_l2_error ")
    assert evaluate({"y": np.array([1.0, 2.01])}, {"y": np.array([1.0, 2.0])}, "fp16", {})["passed"]


def test_a_missing_output_is_an_error():
    with pytest.raises(ValueError, match="output 'z' missing"):
        evaluate({"y": np.zeros(2)}, {"z": np.zeros(2)}, "fp32", {})


def test_fp16_and_bf16_gates_are_one_multiple_of_their_unit_roundoff():
    fp16, bf16 = tolerances("fp16", {}), tolerances("bf16", {})
    assert fp16["max_rel_error"] == pytest.approx(1e-2, rel=1e-3)
    assert bf16["max_rel_error"] / fp16["max_rel_error"] == pytest.approx(2.0 ** 3)  # 2^-8 / 2^-11
    for gate in (fp16, bf16):  # the cosine the rel L2 bound implies
        assert gate["min_cosine"] == pytest.approx(np.sqrt(1 - gate["max_rel_error"] ** 2))
    assert tolerances("bf16", {"max_rel_error": 0.02})["min_cosine"] == pytest.approx(np.sqrt(1 - 0.02 ** 2))
    assert tolerances("bf16", {"max_rel_error": 0.02, "min_cosine": 0.9})["min_cosine"] == 0.9


def test_bf16_gate_still_fails_real_bugs():
    rng = np.random.default_rng(0)
    expected = rng.normal(size=1000)
    rounding = expected * (1 + rng.uniform(-2 ** -8, 2 ** -8, size=1000) * 8)  # ~8 roundings of bf16
    assert evaluate({"y": rounding}, {"y": expected}, "bf16", {})["passed"]
    channel = expected.copy()
    channel[:100] = -channel[:100]  # one channel in ten with the wrong sign
    for wrong in (np.zeros(1000), np.full(1000, np.nan), np.where(expected > 3, np.inf, expected),
                  expected * 1.1, channel):
        result = evaluate({"y": wrong}, {"y": expected}, "bf16", {})
        assert not result["passed"], wrong[:3]


def test_only_the_references_own_default_session_is_the_reference():
    from farm.accuracy import is_reference

    assert is_reference({"backend": "onnxruntime", "precision": "fp32", "build": {}})
    assert not is_reference({"backend": "onnxruntime", "precision": "int8", "build": {}})
    assert not is_reference({"backend": "torch", "precision": "fp32", "build": {}})
    # A knob of its own (a search's knob axis) computes otherwise: compared, pass or fail.
    assert not is_reference({"backend": "onnxruntime", "precision": "fp32",
                             "build": {"graph_optimization_level": "basic"}})
