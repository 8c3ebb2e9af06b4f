"""Strategies replayed over a recorded full sweep (real ONNX Runtime
results of PP-OCR's pretrained direction classifier, every configuration
built, raw samples kept: benchmarks/record_cpu_sweeps.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.search.config import SearchConfig
from farm.search.replay import brute_truth, hints_from, load, run
from farm.search.screening import screen

RECORDED = Path(__file__).resolve().parents[3] / "benchmarks" / "results" / "raw" / "search_sweeps"


@pytest.fixture(scope="module")
def sweep():
    return load(RECORDED / "cpu_cls_48x192.json")


@pytest.mark.parametrize("strategy", ["quick", "bayes"])
def test_a_search_killed_mid_way_carries_on_to_the_same_decisions(sweep, strategy):
    config = SearchConfig(strategy=strategy, objective="throughput")
    whole = run(sweep, config)
    first = run(sweep, config, stop_after=3)
    assert len(first["order"]) < len(whole["order"])
    resumed = run(sweep, config, order=first["order"])
    assert resumed["order"] == whole["order"] and resumed["winners"] == whole["winners"]


def test_quick_finds_the_latency_winner_with_a_fraction_of_the_builds(sweep):
    config = SearchConfig(strategy="quick", objective="latency")
    tied, _ = brute_truth(sweep, config)
    result = run(sweep, config)
    assert all(result["winners"][cls] in members for cls, members in tied.items())
    assert result["builds"] <= 0.25 * len(sweep["candidates"])


def test_quick_starts_where_the_objective_expects_its_best_on_the_batch_axis(sweep):
    latency = run(sweep, SearchConfig(strategy="quick", objective="latency"))
    built = [sweep["candidates"][i].axes for i in latency["order"]]
    assert built[0]["precision"] == "int8"  # fastest expected on a CPU
    assert {a["batch_size"] for a in built} == {1}  # latency grows with batch: never climbed
    throughput = run(sweep, SearchConfig(strategy="quick", objective="throughput"))
    built = [sweep["candidates"][i].axes for i in throughput["order"]]
    assert built[0]["batch_size"] == 32 and built[0]["precision"] == "int8"  # the top of the batch axis
    assert len(built) < 0.3 * len(sweep["candidates"])


def test_quick_bisects_down_to_the_largest_batch_within_a_latency_bound():
    gpu = load(RECORDED / "gpu_h200_magika.json")
    config = SearchConfig(strategy="quick", objective="throughput", constraints={"max_latency_ms": 0.121})
    result = run(gpu, config)
    fp16 = [gpu["candidates"][i].axes["batch_size"] for i in result["order"]
            if gpu["candidates"][i].axes["precision"] == "fp16"]
    assert fp16[:3] == [64, 8, 32]  # top broken, then bisection over 1..32
    tied, _ = brute_truth(gpu, config)
    assert all(result["winners"][cls] in members for cls, members in tied.items())


def test_a_precision_failing_everywhere_does_not_spend_a_small_budget():
    det = load(RECORDED / "cpu_det_256.json")  # int8 fails the gate (rel L2 1.7-32) everywhere
    for objective in ("latency", "throughput"):
        config = SearchConfig(strategy="quick", objective=objective, budget="20%")
        result = run(det, config)
        int8 = [i for i in result["order"] if det["candidates"][i].axes["precision"] == "int8"]
        assert len(int8) == 1 and result["builds"] <= 0.2 * len(det["candidates"])
        assert result["winners"], "a feasible winner within the budget"


def test_bayes_follows_quick_then_respects_its_budget_and_brute_builds_all_but_the_pruned(sweep):
    bayes = run(sweep, SearchConfig(strategy="bayes", objective="throughput", budget=6))
    quick = run(sweep, SearchConfig(strategy="quick", objective="throughput", budget=6))
    assert bayes["builds"] == 6 and bayes["order"] == quick["order"]
    det = load(RECORDED / "cpu_det_256.json")
    brute = run(det, SearchConfig(strategy="brute", objective="latency"))
    clear_int8 = [c for c in det["candidates"] if c.axes["precision"] == "int8"]
    assert len(det["candidates"]) - len(clear_int8) < brute["builds"] < len(det["candidates"])
    assert run(sweep, SearchConfig(strategy="brute", objective="latency"))["builds"] == len(sweep["candidates"])


def test_bayes_is_deterministic_per_seed_and_differs_across_seeds(sweep):
    a = run(sweep, SearchConfig(strategy="bayes", objective="throughput", seed=1))
    b = run(sweep, SearchConfig(strategy="bayes", objective="throughput", seed=1))
    c = run(sweep, SearchConfig(strategy="bayes", objective="throughput", seed=2))
    assert a["order"] == b["order"] and a["order"] != c["order"]


def test_sequential_screening_drops_a_clearly_slower_candidate_early_and_keeps_a_twin(sweep):
    obs = sweep["observations"]
    fast = min((o for o in obs.values() if o.samples_ms), key=lambda o: o.p50_ms)
    slow = max((o for o in obs.values() if len(o.samples_ms) >= 10), key=lambda o: o.p50_ms)
    dropped = screen(slow.samples_ms, fast.samples_ms, "latency")
    assert not dropped.keep and dropped.samples_used <= 16
    twin = screen(fast.samples_ms[::-1], fast.samples_ms, "latency")
    assert twin.keep


def test_results_of_other_workloads_of_the_model_order_what_quick_tries_first():
    det, sibling = load(RECORDED / "cpu_det_256.json"), load(RECORDED / "cpu_det_128.json")
    config = SearchConfig(strategy="quick", objective="latency", budget="20%")
    hints = hints_from([sibling], det, config)
    assert hints
    assert not any(axes["precision"] == "int8" for values in hints.values() for axes, _ in values)  # int8 failed
    plain, hinted = run(det, config), run(det, config, hints=hints)
    first = det["candidates"][hinted["order"][0]].axes
    assert first["precision"] == "fp32" and first["onnxruntime.graph_optimization_level"] == "all"
    tied, _ = brute_truth(det, config)
    assert all(hinted["winners"][cls] in members for cls, members in tied.items())
    assert hinted["builds"] <= plain["builds"]
