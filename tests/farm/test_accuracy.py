from __future__ import annotations

import numpy as np
import pytest

from farm.accuracy import compare_arrays, tolerances
from farm.accuracy_eval import evaluate


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


def test_elementwise_follows_polygraphys_rule():
    """Polygraphy's CompareFunc.simple: fail where both the absolute and the
    relative difference exceed their tolerance; 0 in the reference -> 2.2e-16;
    NaN fails; a reduced statistic compares the statistic."""
    from farm.task_metrics import elementwise

    e = np.array([0.0, 1.0, 100.0])
    assert elementwise(np.array([1e-6, 1.0, 100.0]), e, atol=1e-5, rtol=1e-5) == 1.0  # abs ok at the zero
    assert elementwise(np.array([0.0, 1.0, 100.01]), e, atol=1e-5, rtol=1e-3) == 1.0  # rel ok, abs not
    assert elementwise(np.array([0.0, 1.1, 100.0]), e, atol=1e-5, rtol=1e-5) == 0.0
    assert elementwise(np.array([np.nan, 1.0, 100.0]), e, atol=1.0, rtol=1.0) == 0.0
    # mean of |diff| = 0.1/3 <= 0.05 although one element is off by 0.1
    assert elementwise(np.array([0.0, 1.1, 100.0]), e, atol=0.05, rtol=0.0, error_stat="mean") == 1.0
    assert elementwise(np.array([0.0, 1.1, 100.0]), e, atol=0.05, rtol=0.0, error_stat="max") == 0.0


def test_task_metrics_by_hand():
    from farm.task_metrics import ctc_decode, dice, edit_distance, iou, sequence, topk

    assert topk(np.array([0.1, 0.7, 0.2]), np.array([0.2, 0.6, 0.1])) == 1.0
    assert topk(np.array([0.1, 0.2, 0.7]), np.array([0.2, 0.6, 0.1]), k=2) == 0.5
    steps = np.eye(4)[[1, 1, 0, 2, 2, 0, 2]]  # CTC: 1 1 _ 2 2 _ 2 -> [1, 2, 2]
    assert ctc_decode(steps) == [1, 2, 2]
    assert sequence(steps, steps) == 1.0 and sequence(np.eye(4)[[1, 0, 2]], steps) == 0.0
    assert edit_distance(np.eye(4)[[1, 0, 2]], steps) == 1 / 3
    a, b = np.array([[0.9, 0.9], [0.1, 0.1]]), np.array([[0.9, 0.1], [0.1, 0.1]])
    assert iou(a, b) == 0.5 and dice(a, b) == 2 / 3 and iou(a * 0, b * 0) == 1.0


def test_evaluation_over_batches_pools_samples_and_counts_only_valid_ones():
    from farm.accuracy_eval import evaluate_batches

    rng = np.random.default_rng(0)
    ref = [rng.normal(size=(4, 10)) for _ in range(3)]
    out = [r + rng.normal(scale=0.01, size=r.shape) for r in ref]
    out[2][3] += 100.0  # a filler row of the last batch: must not count
    batches = [({"y": o}, {"y": r}, v) for o, r, v in zip(out, ref, [4, 4, 3])]
    cfg = {"metrics": [{"output": "y", "metric": "cosine", "min": 0.99}]}
    result = evaluate_batches(batches, "int8", cfg, inputs={"source": "data", "rows": [8, 19], "count": 11})
    record = result["per_output"]["y"]
    assert record["samples"] == 11 and len(record["per_sample"]["rel_l2"]) == 11
    stacked_o = np.concatenate([out[0], out[1], out[2][:3]])
    stacked_r = np.concatenate([ref[0], ref[1], ref[2][:3]])
    assert record["rel_l2_error"] == pytest.approx(np.linalg.norm(stacked_o - stacked_r) / np.linalg.norm(stacked_r))
    assert result["status"] == "pass" and record["gate"] == "metrics"
    lo, hi = record["rel_l2_mean_ci"]
    assert lo <= record["rel_l2_mean"] <= hi
    synthetic = evaluate_batches(batches, "int8", {}, inputs={"source": "synthetic", "count": 4})
    assert synthetic["status"] == "unchecked" and synthetic["reason"] == "synthetic inputs"
    assert evaluate_batches(batches, "int8", {"synthetic_ok": True},
                            inputs={"source": "synthetic", "count": 4})["status"] == "pass"


def test_rows_split_disjoint_or_refused():
    from farm.errors import SpecError
    from farm.input_data import split_rows

    assert split_rows(600, True, {}, None) == {"calibration": [0, 256], "evaluation": [256, 512], "overlap": False}
    assert split_rows(10, True, {"samples": 3}, 4) == {"calibration": [0, 3], "evaluation": [3, 7], "overlap": False}
    assert split_rows(10, False, {}, None) == {"calibration": None, "evaluation": [0, 10], "overlap": False}
    with pytest.raises(SpecError, match="1 sample row cannot give disjoint calibration and evaluation rows"):
        split_rows(1, True, {}, None)
    with pytest.raises(SpecError, match="allow_overlap"):
        split_rows(10, True, {"samples": 8}, 4)
    assert split_rows(1, True, {"allow_overlap": True}, None)["overlap"] is True


def test_unchecked_on_synthetic_inputs_is_never_eligible_and_says_why():
    import pandas as pd

    from farm.reports.best import SYNTHETIC_REASON, excluded
    from farm.reports.eligibility import Constraints

    row = {"status": "done", "latency_p50_ms": 1.0, "latency_p99_ms": 1.1, "throughput": 900.0,
           "accuracy_status": "unchecked", "accuracy_inputs": "synthetic (4)", "flags": []}
    assert "synthetic inputs" in Constraints().violation(row)
    assert Constraints(allow_unchecked=True).violation(row) is None
    base = {"job_id": "int8", "device_class": "cpu.x", "device": "cpu", "workload": "p:1", "backend": "onnxruntime",
            "precision": "int8", "batch_size": 1, "latency_p50_ci_low_ms": 0.9, "latency_p50_ci_high_ms": 1.1,
            "throughput_ci_low": 850.0, "throughput_ci_high": 950.0, "memory_mb": None, "artifact_size": 1,
            "build_s": 1.0, "rel_l2_error": 0.01, "sweep_created_at": 0, "seq": 0, "job_key": "a"}
    fp32 = {**base, **row, "job_id": "fp32", "precision": "fp32", "latency_p50_ms": 2.0, "latency_p99_ms": 2.2,
            "latency_p50_ci_low_ms": 1.9, "latency_p50_ci_high_ms": 2.1, "accuracy_status": "reference",
            "accuracy_inputs": "synthetic (4)", "seq": 1, "job_key": "b"}
    frame = pd.DataFrame([{**base, **row}, fp32])
    [left_out] = excluded(frame, Constraints())
    assert left_out["job_id"] == "int8" and left_out["would_be"] == "winner" and left_out["reason"] == SYNTHETIC_REASON


def test_the_deciding_task_metric_is_named_for_tables():
    from farm.accuracy_eval import evaluate_batches
    from farm.cli.output import accuracy

    rng = np.random.default_rng(1)
    ref = rng.uniform(size=(4, 16, 16))
    noisy = np.clip(ref + rng.normal(scale=0.3, size=ref.shape), 0, 1)
    inputs = {"source": "data", "rows": [0, 4], "count": 4}
    iou = {"metrics": [{"output": "m", "metric": "iou", "threshold": 0.5, "min": 0.99}]}
    failed = evaluate_batches([({"m": noisy}, {"m": ref}, 4)], "int8", iou, inputs=inputs)
    value = failed["per_output"]["m"]["metrics"][0]["value"]
    assert failed["status"] == "fail" and value < 0.99
    assert failed["metric_summary"] == f"iou {value:.3g}"  # name without its parameters, aggregated value
    row = {"accuracy_status": "fail", "accuracy_metric": failed["metric_summary"], "rel_l2_error": 0.5}
    assert accuracy(row) == f"FAIL (iou {value:.3g})"
    passed = evaluate_batches([({"m": ref}, {"m": ref}, 4)], "int8", iou, inputs=inputs)
    assert passed["status"] == "pass" and passed["metric_summary"] == "iou 1"
    # Only the default gate judged: nothing to name, the rel L2 column is the figure.
    default = evaluate_batches([({"m": noisy}, {"m": ref}, 4)], "int8", {}, inputs=inputs)
    assert default["status"] == "fail" and default["metric_summary"] is None
    assert accuracy({"accuracy_status": "fail", "accuracy_metric": None}) == "FAIL"
    assert accuracy({"accuracy_status": "reference", "accuracy_metric": "iou 1"}) == "reference"
    reference = evaluate_batches([({"m": ref}, {"m": ref}, 4)], "fp32", iou, reference_job=True, inputs=inputs)
    assert reference["status"] == "reference" and reference["metric_summary"] is None
