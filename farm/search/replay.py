"""Replaying a search over a recorded full sweep: the strategy asks one step
at a time, exactly as the live driver does, and gets the recorded result
instead of a new build. Used by benchmarks/search_replay.py and the tests.

A recorded sweep is the JSON benchmarks/record_cpu_sweeps.py writes: one
row per configuration with its raw samples (``samples_ms``), accuracy
verdict, memory and the build knobs it ran with.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd

from farm.reports.best import Constraints, select_best
from farm.reports.rows import REPORT_FIELDS, finish_frame
from farm.search.config import SearchConfig
from farm.search.engine import finalists, plan_step
from farm.search.observe import feasible, from_samples, score
from farm.search.space import Candidate, groups


def load(path: Path) -> dict:
    """Candidates, observations and a report frame (for the ranking) of one
    recorded sweep. Knobs that vary between rows become axes; in the frame
    they are folded into the backend name so the ranking keeps them apart."""
    data = json.loads(Path(path).read_text())
    rows = data["rows"]
    knobs = sorted({k for r in rows for k in (r.get("build") or {})
                    if len({json.dumps((x.get("build") or {}).get(k)) for x in rows}) > 1})
    candidates, observations, records = [], {}, []
    for idx, r in enumerate(rows):
        build = r.get("build") or {}
        axes = {"backend": r["backend"], "precision": r["precision"], "batch_size": r["batch_size"],
                **{f"{r['backend']}.{k}": build.get(k) for k in knobs}}
        candidates.append(Candidate(idx, f"{r['device_class']}|{r['profile']}", axes))
        samples = r.get("samples_ms") or []
        obs = from_samples(idx, r["batch_size"], samples, status=r["status"], memory_mb=r.get("memory_mb"),
                           accuracy_pass=r.get("accuracy_pass"), rel_l2_error=r.get("rel_l2_error"),
                           accuracy_status=r.get("accuracy_status"), flags=r.get("flags") or [],
                           rel_l2_limit=r.get("rel_l2_limit"), error=r.get("error"), job_id=f"c{idx}")
        observations[idx] = obs
        tag = ",".join(f"{k}={build.get(k)}" for k in knobs)
        records.append({"job_id": f"c{idx}", "status": r["status"], "device_class": r["device_class"],
                        "backend": f"{r['backend']}[{tag}]" if tag else r["backend"], "precision": r["precision"],
                        "batch_size": r["batch_size"], "profile": r["profile"], "latency_p50_ms": obs.p50_ms,
                        "latency_p99_ms": obs.p99_ms, "throughput": obs.throughput, "memory_mb": r.get("memory_mb"),
                        "artifact_size": r.get("artifact_size"), "build_s": r.get("build_s"),
                        "accuracy_pass": r.get("accuracy_pass"), "rel_l2_error": r.get("rel_l2_error"),
                        "accuracy_status": r.get("accuracy_status"), "workload": r.get("workload"),
                        "reused": False, "flags": r.get("flags") or [], "samples_ms": samples})
    frame = pd.DataFrame(records)
    for column in REPORT_FIELDS:
        if column not in frame:
            frame[column] = None
    return {"name": data["name"], "meta": data, "candidates": candidates, "observations": observations,
            "frame": finish_frame(frame)}


def constraints_of(config: SearchConfig) -> Constraints:
    return config.eligibility


INTERVALS = (("latency_p50_ci_low_ms", "latency_p50_ci_high_ms"), ("throughput_ci_low", "throughput_ci_high"))


def with_drift(frame: pd.DataFrame, drift: float) -> pd.DataFrame:
    """Every 95 % interval widened by ``drift`` (a share) on each side: the
    run-to-run drift of a configuration measured once, minutes from the
    others, which its within-run interval does not hold."""
    if not drift:
        return frame
    out = frame.copy()
    for low, high in INTERVALS:
        out[low] = pd.to_numeric(out[low], errors="coerce") * (1 - drift)
        out[high] = pd.to_numeric(out[high], errors="coerce") * (1 + drift)
    return out


def brute_truth(sweep: dict, config: SearchConfig, drift: float = 0.0) -> tuple[dict[str, set[str]], dict[str, str]]:
    """Per device class over the whole recorded space: the brute-force
    winner and the set {winner and every configuration tied with it}; with
    ``drift``, tied allowing for that run-to-run drift (still within the
    ranking's TIE_WINDOW)."""
    best = select_best(with_drift(sweep["frame"], drift), constraints_of(config))
    tied = {cls: set(g["job_id"]) for cls, g in best.groupby("device_class")}
    winner = {cls: g[g["role"] == "winner"]["job_id"].iloc[0] for cls, g in best.groupby("device_class")}
    return tied, winner


def hints_from(siblings: list[dict], sweep: dict, config: SearchConfig) -> dict[str, list]:
    """What the farm would know from the same model's other workloads on the
    same device class: each sibling sweep's configurations that passed the
    accuracy gate (bounds on latency or memory do not carry over to other
    input shapes), as (axes, score) for every group of ``sweep``."""
    accuracy = replace(config.eligibility, max_latency_ms=None, min_throughput=None, max_memory_mb=None)
    out: dict[str, list] = {}
    for group in groups(sweep["candidates"]):
        device_class = group.split("|", 1)[0]
        out[group] = [(c.axes, score(o, config.objective)) for s in siblings for c in s["candidates"]
                      if c.group.split("|", 1)[0] == device_class
                      and feasible(o := s["observations"][c.idx], accuracy)]
    return out


def run(sweep: dict, config: SearchConfig, stop_after: int | None = None, order: list[int] | None = None,
        hints: dict[str, list] | None = None) -> dict:
    """Replay ``config``'s strategy; ``stop_after`` steps then return (a
    coordinator killed mid-search), ``order`` to carry such a run on;
    ``hints`` as ``hints_from``."""
    candidates, recorded = sweep["candidates"], sweep["observations"]
    order = list(order or [])
    observations = {i: recorded[i] for i in order}
    budget = config.budget_for(len(candidates), len(groups(candidates)))
    steps = 0
    while stop_after is None or steps < stop_after:
        step = plan_step(candidates, config, budget, observations, set(), order, hints=hints)
        if not step.proposals:
            break
        steps += 1
        for idx in step.proposals:
            observations[idx] = recorded[idx]
            order.append(idx)
    winners, drops, used, total = {}, {}, 0, 0
    for group, members in groups(candidates).items():
        final, out = finalists(members, observations, config)
        drops.update({i: r for i, r in out.items() if r.startswith("worse than the leader")})
        used += sum(f.samples_used for f in final) + sum(
            int(r.split(" after ")[1].split()[0]) for r in out.values() if r.startswith("worse than"))
        total += sum(len(observations[i].samples_ms) for i in observations if i in {c.idx for c in members})
        if final:
            rows = sweep["frame"][sweep["frame"]["job_id"].isin([f"c{f.idx}" for f in final])]
            best = select_best(rows, constraints_of(config))
            for cls, g in best.groupby("device_class"):
                winners[cls] = g[g["role"] == "winner"]["job_id"].iloc[0]
    return {"order": order, "builds": len(order), "winners": winners, "drops": drops, "samples_used": used,
            "samples_all": total}
