"""Constraint-aware pruning rules (farm/search/pruning.py) and what the
search records for them."""

from __future__ import annotations

import numpy as np

from farm.search.config import SearchConfig
from farm.search.engine import plan_step
from farm.search.observe import from_samples
from farm.search.pruning import prune
from farm.search.space import Candidate

GROUP = "cpu.x86_64|p:[]"


def space(precisions=("fp32", "int8"), batches=(1, 2, 4, 8), threads=(1, 2)):
    out = []
    for p in precisions:
        for t in threads:
            for b in batches:
                out.append(Candidate(len(out), GROUP, {"backend": "onnxruntime", "precision": p, "batch_size": b,
                                                       "onnxruntime.intra_op_num_threads": t}))
    return out


def find(cands, **axes):
    return next(c for c in cands if all(c.axes[k if k != "threads" else "onnxruntime.intra_op_num_threads"] == v
                                        for k, v in axes.items()))


def observed(c, latency_ms, **more):
    samples = np.random.default_rng(c.idx).normal(latency_ms, latency_ms * 0.01, 50)
    return from_samples(c.idx, c.axes["batch_size"], samples, **more)


def test_a_broken_latency_bound_prunes_every_larger_batch_of_that_series_only():
    cands = space()
    b2 = find(cands, precision="fp32", batch_size=2, threads=1)
    reasons = prune(cands, {b2.idx: observed(b2, 30.0)}, {"max_latency_ms": 20.0})
    pruned = {(cands[i].axes["precision"], cands[i].axes["batch_size"],
               cands[i].axes["onnxruntime.intra_op_num_threads"]) for i in reasons}
    assert pruned == {("fp32", 4, 1), ("fp32", 8, 1)}
    assert "max_latency_ms 20" in reasons[find(cands, precision="fp32", batch_size=4, threads=1).idx]
    assert "latency grows with batch" in reasons[find(cands, precision="fp32", batch_size=8, threads=1).idx]


def test_latency_within_the_bound_prunes_nothing_and_a_p99_tail_alone_prunes_nothing():
    cands = space()
    b2 = find(cands, precision="fp32", batch_size=2, threads=1)
    assert prune(cands, {b2.idx: observed(b2, 18.0)}, {"max_latency_ms": 20.0}) == {}
    obs = observed(b2, 18.0)
    obs.p99_ms = 25.0  # a long tail: p99 breaks the bound, the median does not
    assert prune(cands, {b2.idx: obs}, {"max_latency_ms": 20.0}) == {}
    assert prune(cands, {b2.idx: obs}, {"max_latency_ms": 20.0, "latency_stat": "p50"}) == {}


def test_a_median_over_the_bound_within_its_noise_prunes_nothing():
    cands = space()
    b2 = find(cands, precision="fp32", batch_size=2, threads=1)
    samples = np.random.default_rng(0).normal(21.0, 6.0, 12)  # median ~21 ms, interval reaches below 20
    noisy = from_samples(b2.idx, 2, samples)
    assert noisy.p50_ms > 20.0 and noisy.latency_ci[0] < 20.0
    assert prune(cands, {b2.idx: noisy}, {"max_latency_ms": 20.0}) == {}


def test_memory_bound_prunes_larger_batches():
    cands = space()
    b4 = find(cands, precision="int8", batch_size=4, threads=2)
    reasons = prune(cands, {b4.idx: observed(b4, 5.0, memory_mb=900.0)}, {"max_memory_mb": 512})
    assert [cands[i].axes["batch_size"] for i in reasons] == [8]
    assert "memory 900 MB > max_memory_mb 512" in next(iter(reasons.values()))


def test_a_precision_failing_accuracy_is_skipped_at_every_other_batch_of_its_knobs():
    cands = space()
    b1 = find(cands, precision="int8", batch_size=1, threads=1)
    reasons = prune(cands, {b1.idx: observed(b1, 5.0, accuracy_pass=False, rel_l2_error=0.8)}, {})
    assert {(cands[i].axes["precision"], cands[i].axes["onnxruntime.intra_op_num_threads"]) for i in reasons} \
        == {("int8", 1)}
    assert len(reasons) == 3  # batches 2, 4, 8; the other thread count may compute differently
    assert all("int8 failed the accuracy gate" in r for r in reasons.values())


def test_a_precision_a_task_metric_failed_is_explained_by_that_metric():
    """The pruning's reason and farm best's are one wording (deciding_figure)."""
    cands = space()
    b1 = find(cands, precision="int8", batch_size=1, threads=1)
    failed = observed(b1, 5.0, accuracy_pass=False, rel_l2_error=0.8, accuracy_metric="iou 0.41")
    reasons = prune(cands, {b1.idx: failed}, {})
    assert reasons and all("failed the accuracy gate (iou 0.41)" in r for r in reasons.values())


def test_max_rel_error_counts_as_an_accuracy_failure():
    cands = space()
    b1 = find(cands, precision="int8", batch_size=1, threads=1)
    reasons = prune(cands, {b1.idx: observed(b1, 5.0, accuracy_pass=True, rel_l2_error=0.05)},
                    {"max_rel_error": 0.01})
    assert len(reasons) == 3 and "max_rel_error 0.01" in next(iter(reasons.values()))


def test_a_marginal_accuracy_failure_prunes_nothing():
    """Within CLEAR_FAILURE times the limit, another batch's inputs can pass
    (recorded: int8 rel L2 0.226 at batch 1, 0.015-0.098 at batches 2-16)."""
    cands = space()
    b1 = find(cands, precision="int8", batch_size=1, threads=1)
    marginal = observed(b1, 5.0, accuracy_pass=False, rel_l2_error=0.226)  # int8's limit: 0.1
    assert prune(cands, {b1.idx: marginal}, {}) == {}
    assert prune(cands, {b1.idx: observed(b1, 5.0, accuracy_pass=True, rel_l2_error=0.02)},
                 {"max_rel_error": 0.01}) == {}
    own_limit = observed(b1, 5.0, accuracy_pass=False, rel_l2_error=0.226, rel_l2_limit=0.05)
    assert len(prune(cands, {b1.idx: own_limit}, {})) == 3  # the job's own gate (4.5x over) is clear


def test_retry_failed_precisions_keeps_them():
    cands = space()
    b1 = find(cands, precision="int8", batch_size=1, threads=1)
    assert prune(cands, {b1.idx: observed(b1, 5.0, accuracy_pass=False)}, {}, retry_failed_precisions=True) == {}


def test_an_unsupported_precision_is_skipped_but_a_crash_prunes_nothing():
    cands = space()
    b1 = find(cands, precision="int8", batch_size=1, threads=1)
    unsupported = from_samples(b1.idx, 1, [], status="unsupported", error="this GPU cannot run int8 engines")
    assert len(prune(cands, {b1.idx: unsupported}, {})) == 7
    crashed = from_samples(b1.idx, 1, [], status="failed", error="Traceback ...\nMemoryError")
    assert prune(cands, {b1.idx: crashed}, {}) == {}


def test_pruned_configurations_are_never_proposed():
    cands = space()
    b1 = find(cands, precision="int8", batch_size=1, threads=1)
    observations = {b1.idx: observed(b1, 5.0, accuracy_pass=False)}
    config = SearchConfig(strategy="brute")
    step = plan_step(cands, config, len(cands), observations, set(), [b1.idx])
    assert step.proposals and not set(step.proposals) & {c.idx for c in cands if c.series() == b1.series()}
    assert set(step.pruned) == {c.idx for c in cands if c.series() == b1.series()} - {b1.idx}
