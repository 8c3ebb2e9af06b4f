"""One eligibility vocabulary (farm/reports/eligibility.py): over generated result
sets, ``farm best`` (best.eligible, vectorised), the rule per row, a
search's feasibility (observe.feasible on Observations, from the spec's
``search:`` block) and its finals (select_best on re-measured figures under
the constraints the finals store) agree on which rows may win; a final
winner never violates a user constraint.

hypothesis is not installed: a seeded generator draws 300 result sets, each
with its own constraints; a failure prints its seed."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from farm.reports.eligibility import Constraints
from farm.reports.best import eligible, select_best
from farm.reports.rows import REPORT_FIELDS, finish_frame
from farm.search.config import FinalsConfig, SearchConfig
from farm.search.engine import finalists
from farm.search.finals import finals_constraints, settings_from
from farm.search.observe import Observation, feasible
from farm.search.space import Candidate

STATUSES = ["done"] * 8 + ["failed", "unsupported"]
ACCURACY = ["pass", "pass", "reference", "fail", "unchecked", None]
FLAGS = [[], [], [], ["host_bound"], ["host_contended"], ["sync_fallback"], ["host_bound", "host_contended"]]


def _maybe(rng: random.Random, value, share_missing: float):
    return None if rng.random() < share_missing else value


def result_set(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        batch = rng.choice([1, 2, 4, 8])
        p50 = rng.uniform(0.5, 20.0)
        samples = [p50 * rng.uniform(0.9, 1.15) for _ in range(rng.randint(0, 12))]
        status = rng.choice(STATUSES)
        accuracy = rng.choice(ACCURACY)
        measured = status == "done" and rng.random() > 0.05
        rows.append({
            "job_id": f"j{i:04d}", "sweep_id": "s", "status": status, "backend": f"b{i}",
            "backend_version": "1", "precision": rng.choice(["fp32", "fp16", "int8"]), "batch_size": batch,
            "profile": "p", "workload": rng.choice(["w1", "w2"]), "device_class": rng.choice(["gpu.a", "cpu.b"]),
            "device": None, "reused": False,
            "latency_p50_ms": p50 if measured else None,
            "latency_p99_ms": p50 * rng.uniform(1.0, 3.0) if measured else None,
            "latency_mean_ms": p50 if measured else None,
            "throughput": batch * 1000.0 / p50 if measured else None,
            "memory_mb": _maybe(rng, rng.uniform(10, 500), 0.3) if measured else None,
            "rel_l2_error": _maybe(rng, 10 ** rng.uniform(-5, -0.5), 0.3) if measured else None,
            "accuracy_status": accuracy, "accuracy_pass": None if accuracy in (None, "unchecked", "reference")
            else accuracy == "pass", "flags": list(rng.choice(FLAGS)),
            "error": None if status == "done" else "Traceback ...\nRuntimeError: no kernel",
            "samples_ms": samples if measured else [],
        })
    return rows


def constraints_block(rng: random.Random, rows: list[dict]) -> tuple[str, dict]:
    """(objective, a spec's search.constraints) with bounds inside the data's range."""
    def q(column, low, high):
        values = [r[column] for r in rows if r[column] is not None]
        return float(np.quantile(values, rng.uniform(low, high))) if values else 1.0

    block: dict = {}
    if rng.random() < 0.5:
        block["latency_stat"] = rng.choice(["p50", "p99"])
    if rng.random() < 0.5:
        block["max_latency_ms"] = q("latency_p99_ms", 0.2, 0.9)
    if rng.random() < 0.3:
        block["min_throughput"] = q("throughput", 0.1, 0.7)
    if rng.random() < 0.4:
        block["max_memory_mb"] = q("memory_mb", 0.3, 0.9)
    if rng.random() < 0.5:
        block["max_rel_error"] = q("rel_l2_error", 0.3, 0.9)
    for flag in ("allow_unchecked", "allow_host_bound"):
        if rng.random() < 0.3:
            block[flag] = True
    return rng.choice(["latency", "throughput"]), block


def frame_of(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame([{k: v for k, v in r.items() if k != "error"} for r in rows])
    for column in REPORT_FIELDS:
        if column not in frame:
            frame[column] = None
    return finish_frame(frame)


def observation(idx: int, row: dict) -> Observation:
    return Observation(idx=idx, status=row["status"], batch_size=row["batch_size"], samples_ms=row["samples_ms"],
                       p50_ms=row["latency_p50_ms"], p99_ms=row["latency_p99_ms"], throughput=row["throughput"],
                       memory_mb=row["memory_mb"], accuracy_pass=row["accuracy_pass"],
                       accuracy_status=row["accuracy_status"], flags=row["flags"],
                       rel_l2_error=row["rel_l2_error"], error=row["error"])


SEEDS = range(300)


@pytest.mark.parametrize("seed", SEEDS[::30])
def test_best_the_rule_and_search_feasibility_agree(seed):
    for offset in range(30):
        rng = random.Random(seed + offset)
        rows = result_set(rng, rng.randint(1, 40))
        objective, block = constraints_block(rng, rows)
        config = SearchConfig(strategy="quick", objective=objective, constraints=block)
        rule = config.eligibility
        by_best = set(eligible(frame_of(rows), rule)["job_id"])
        by_rule = {r["job_id"] for r in rows if rule.violation(r) is None}
        by_search = {r["job_id"] for i, r in enumerate(rows) if feasible(observation(i, r), config.constraints)}
        assert by_best == by_rule == by_search, (seed + offset, block)
        # Vectorised and per row are the same rule on the normalised frame too.
        frame = frame_of(rows)
        assert set(frame[rule.eligible_mask(frame)]["job_id"]) == by_rule, (seed + offset, block)


def test_the_rule_says_why_in_one_line():
    rule = Constraints(max_memory_mb=100, max_rel_error=0.01)
    row = {"status": "done", "latency_p50_ms": 1.0, "latency_p99_ms": 2.0, "throughput": 1000.0,
           "memory_mb": None, "rel_l2_error": 0.001, "accuracy_status": "pass", "flags": []}
    assert rule.violation(row) == "memory_mb not measured, so max_memory_mb 100 is not met"
    assert rule.violation({**row, "memory_mb": 50.0}) is None
    assert rule.violation({**row, "memory_mb": 50.0, "accuracy_status": "unchecked"}).startswith("accuracy unchecked")
    assert rule.violation({**row, "memory_mb": 50.0, "flags": ["host_contended"]}).startswith("flagged host_contended")
    assert rule.violation({**row, "memory_mb": 50.0, "rel_l2_error": None}) == \
        "rel_l2_error not measured, so max_rel_error 0.01 is not met"


def test_a_task_metric_failure_names_the_metric_not_rel_l2():
    """A verdict a task metric decided (edit distance of a recogniser's
    decoded lines) is explained by that metric; rel L2 did not decide it."""
    rule = Constraints()
    row = {"status": "done", "latency_p50_ms": 1.0, "latency_p99_ms": 2.0, "throughput": 1000.0,
           "memory_mb": 10.0, "rel_l2_error": 0.051, "accuracy_status": "fail", "flags": []}
    assert rule.violation({**row, "accuracy_metric": "edit_distance 0.0625"}) == \
        "failed the accuracy gate (edit_distance 0.0625)"
    assert rule.violation(row) == "failed the accuracy gate (rel L2 0.051)"


def remeasured(rows: list[dict], rng: random.Random) -> list[dict]:
    """The finals' figures: every finalist's samples drawn again (drift,
    another window), p50/p99/throughput from them; the rest is its record."""
    out = []
    for r in rows:
        drift = rng.uniform(0.7, 1.6)
        samples = [s * drift for s in r["samples_ms"]] or ([r["latency_p50_ms"] * drift]
                                                           if r["latency_p50_ms"] else [])
        data = np.asarray(samples, dtype=float)
        out.append({**r, "samples_ms": samples,
                    "latency_p50_ms": float(np.percentile(data, 50)) if data.size else None,
                    "latency_p99_ms": float(np.percentile(data, 99)) if data.size else None,
                    "throughput": r["batch_size"] * 1000.0 / float(data.mean()) if data.size else None})
    return out


@pytest.mark.parametrize("seed", SEEDS[::30])
def test_a_final_winner_never_violates_a_user_constraint(seed):
    for offset in range(30):
        rng = random.Random(10_000 + seed + offset)
        rows = result_set(rng, rng.randint(2, 30))
        for r in rows:  # one group: the finals compare one device class's workload
            r["device_class"], r["workload"] = "gpu.a", "w1"
        objective, block = constraints_block(rng, rows)
        config = SearchConfig(strategy="quick", objective=objective, constraints=block,
                              finals=FinalsConfig(top=3))
        # Screening: who goes to the finals (engine.finalists: feasible only).
        members = [Candidate(i, "gpu.a|w1", {"backend": r["backend"], "batch_size": r["batch_size"]})
                   for i, r in enumerate(rows)]
        observations = {i: observation(i, r) for i, r in enumerate(rows)}
        final, _ = finalists(members, observations, config)
        assert all(feasible(observations[f.idx], config.eligibility) for f in final)
        # The finals decide on re-measured figures under the constraints they stored.
        chosen = remeasured([rows[f.idx] for f in final], rng)
        rule = finals_constraints(settings_from(config, config.objective))
        assert rule == config.eligibility
        best = select_best(frame_of(chosen), rule)
        winners = best[best["role"] == "winner"]["job_id"].tolist()
        by_id = {r["job_id"]: r for r in chosen}
        for job_id in winners + best[best["role"] == "tied"]["job_id"].tolist():
            assert rule.violation(by_id[job_id]) is None, (10_000 + seed + offset, block, by_id[job_id])
        if any(rule.violation(r) is None for r in chosen):
            assert len(winners) == 1
        else:
            assert winners == []  # re-measured, nobody meets the constraints: no winner, not the least bad


def test_finals_recorded_before_constraints_were_stored_keep_their_objective():
    assert finals_constraints({"objective": "throughput"}) == Constraints(objective="throughput")
