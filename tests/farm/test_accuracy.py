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
    assert not result["passed"] and result["failures"][0].startswith("rel_l2_error ")
    assert evaluate({"y": np.array([1.0, 2.01])}, {"y": np.array([1.0, 2.0])}, "fp16", {})["passed"]


def test_a_missing_output_is_an_error():
    with pytest.raises(ValueError, match="output 'z' missing"):
        evaluate({"y": np.zeros(2)}, {"z": np.zeros(2)}, "fp32", {})
