"""Replay benchmark: search strategies against recorded FULL sweeps.

Every recorded sweep (benchmarks/results/raw/search_sweeps/*.json: every
configuration of a space built and measured, raw latency samples kept) is
replayed: a strategy asks for configurations one step at a time exactly as
the live driver does (farm/search/engine.py), and gets the recorded result
instead of a new build. Counted: the builds each strategy spent, and whether
its winner is statistically tied with brute force's winner, both decided by
the farm's one ranking function (farm.reports.best.select_best) on the
recorded samples.

Finals cannot be re-measured in a replay: a strategy's finalists compete on
their recorded samples. The screening test's empirical error (dropping a
candidate that the full data ties with the brute-force winner) is counted.

    python benchmarks/search_replay.py [--seeds 5] [-o benchmarks/results/search_replay.md]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from farm.reports.best import Constraints, select_best  # noqa: E402
from farm.reports.rows import REPORT_FIELDS, finish_frame  # noqa: E402
from farm.search.config import SearchConfig  # noqa: E402
from farm.search.engine import finalists, plan_step  # noqa: E402
from farm.search.observe import from_samples  # noqa: E402
from farm.search.space import Candidate, groups  # noqa: E402

RAW = ROOT / "benchmarks" / "results" / "raw" / "search_sweeps"


def load(path: Path) -> dict:
    data = json.loads(path.read_text())
    rows = data["rows"]
    knobs = sorted({k for r in rows for k in (r.get("build") or {})
                    if len({json.dumps((x.get("build") or {}).get(k)) for x in rows}) > 1})
    candidates, observations, frame_rows = [], {}, []
    for idx, r in enumerate(rows):
        axes = {"backend": r["backend"], "precision": r["precision"], "batch_size": r["batch_size"],
                **{f"{r['backend']}.{k}": (r.get("build") or {}).get(k) for k in knobs}}
        group = f"{r['device_class']}|{r['profile']}"
        candidates.append(Candidate(idx, group, axes))
        samples = r.get("samples_ms") or []
        observations[idx] = from_samples(idx, r["batch_size"], samples, status=r["status"],
                                         memory_mb=r.get("memory_mb"), accuracy_pass=r.get("accuracy_pass"),
                                         rel_l2_error=r.get("rel_l2_error"), error=r.get("error"),
                                         job_id=r.get("job_id"))
        obs = observations[idx]
        tag = ",".join(f"{k}={(r.get('build') or {}).get(k)}" for k in knobs)
        frame_rows.append({"job_id": f"c{idx}", "status": r["status"], "device_class": r["device_class"],
                           "backend": f"{r['backend']}[{tag}]" if tag else r["backend"],
                           "precision": r["precision"], "batch_size": r["batch_size"], "profile": r["profile"],
                           "latency_p50_ms": obs.p50_ms, "latency_p99_ms": obs.p99_ms,
                           "throughput": obs.throughput, "memory_mb": r.get("memory_mb"),
                           "artifact_size": r.get("artifact_size"), "build_s": r.get("build_s"),
                           "accuracy_pass": r.get("accuracy_pass"), "rel_l2_error": r.get("rel_l2_error"),
                           "reused": False, "flags": r.get("flags") or [], "samples_ms": samples})
    frame = pd.DataFrame(frame_rows)
    for column in REPORT_FIELDS:
        if column not in frame:
            frame[column] = None
    return {"name": data["name"], "meta": data, "candidates": candidates, "observations": observations,
            "frame": finish_frame(frame)}


def scenarios(sweep: dict) -> list[tuple[str, SearchConfig]]:
    """Latency; throughput; throughput under a p99 bound that rules out part
    of the space (the median p99 of the recorded configurations)."""
    p99 = [o.p99_ms for o in sweep["observations"].values() if o.p99_ms is not None]
    bound = float(np.median(p99))
    return [("latency", SearchConfig(objective="latency")),
            ("throughput", SearchConfig(objective="throughput")),
            (f"throughput, p99<={bound:.3g}ms", SearchConfig(objective="throughput",
                                                             constraints={"max_latency_ms": bound}))]


def _constraints(config: SearchConfig) -> Constraints:
    c = config.constraints
    return Constraints(objective=config.objective, latency_stat=c.get("latency_stat", "p99"),
                       max_latency_ms=c.get("max_latency_ms"), min_throughput=c.get("min_throughput"),
                       max_memory_mb=c.get("max_memory_mb"), max_rel_error=c.get("max_rel_error"))


def brute_truth(sweep: dict, config: SearchConfig) -> dict[str, set[str]]:
    """Per device class: the brute-force winner and every config tied with it."""
    best = select_best(sweep["frame"], _constraints(config))
    return {cls: set(g["job_id"]) for cls, g in best.groupby("device_class")}, \
        {cls: g[g["role"] == "winner"]["job_id"].iloc[0] for cls, g in best.groupby("device_class")}


def run(sweep: dict, config: SearchConfig) -> dict:
    candidates, recorded = sweep["candidates"], sweep["observations"]
    observations, order = {}, []
    budget = config.budget_for(len(candidates), len(groups(candidates)))
    while True:
        step = plan_step(candidates, config, budget, observations, set(), order)
        if not step.proposals:
            break
        for idx in step.proposals:
            observations[idx] = recorded[idx]
            order.append(idx)
    winners, drops, samples_used, samples_all = {}, {}, 0, 0
    for group, members in groups(candidates).items():
        final, out = finalists(members, observations, config)
        drops.update({i: r for i, r in out.items() if r.startswith("worse than the leader")})
        samples_used += sum(f.samples_used for f in final) + sum(
            int(r.split(" after ")[1].split()[0]) for i, r in out.items() if r.startswith("worse than"))
        samples_all += sum(len(observations[i].samples_ms) for i in observations)
        if not final:
            continue
        rows = sweep["frame"][sweep["frame"]["job_id"].isin([f"c{f.idx}" for f in final])]
        best = select_best(rows, _constraints(config))
        for cls, g in best.groupby("device_class"):
            winners[cls] = g[g["role"] == "winner"]["job_id"].iloc[0]
    return {"builds": len(order), "winners": winners, "drops": drops, "samples_used": samples_used,
            "samples_all": samples_all}


def describe(sweep: dict, job_id: str | None) -> str:
    if job_id is None:
        return "-"
    c = sweep["candidates"][int(job_id[1:])]
    return " ".join(str(v) for k, v in c.axes.items() if k != "backend")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5, help="bayes runs per scenario (TPE seeds 0..N-1)")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "benchmarks" / "results" / "search_replay.md")
    args = parser.parse_args()
    sweeps = [load(p) for p in sorted(RAW.glob("*.json"))]
    lines, totals = [], {s: {"runs": 0, "tied": 0, "builds": 0, "space": 0} for s in ("brute", "quick", "bayes")}
    drop_stats = {"drops": 0, "false": 0, "used": 0, "all": 0}
    for sweep in sweeps:
        space = len(sweep["candidates"])
        for label, base in scenarios(sweep):
            tied_sets, brute_winner = brute_truth(sweep, base)
            cells = []
            for strategy in ("brute", "quick", "bayes"):
                seeds = range(args.seeds) if strategy == "bayes" else [0]
                tied_runs, build_runs, shown = 0, [], None
                for seed in seeds:
                    config = SearchConfig(strategy=strategy, objective=base.objective,
                                          constraints=base.constraints, seed=seed)
                    result = run(sweep, config)
                    ok = all(result["winners"].get(cls) in tied for cls, tied in tied_sets.items())
                    tied_runs += ok
                    build_runs.append(result["builds"])
                    shown = shown or result["winners"]
                    t = totals[strategy]
                    t["runs"], t["tied"], t["builds"], t["space"] = (t["runs"] + 1, t["tied"] + ok,
                                                                     t["builds"] + result["builds"], t["space"] + space)
                    for idx in result["drops"]:
                        drop_stats["drops"] += 1
                        drop_stats["false"] += any(f"c{idx}" in tied for tied in tied_sets.values())
                    drop_stats["used"] += result["samples_used"]
                    drop_stats["all"] += result["samples_all"]
                winner = describe(sweep, next(iter(shown.values()), None))
                cells.append(f"{np.mean(build_runs):.1f}/{space} ({100 * np.mean(build_runs) / space:.0f} %), "
                             f"tied {tied_runs}/{len(seeds)}, {winner}")
            truth = describe(sweep, next(iter(brute_winner.values()), None))
            lines.append(f"| {sweep['name']} | {label} | {truth} | " + " | ".join(cells) + " |")
    out = [f"# Search replay over recorded full sweeps",
           "",
           f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
           f"- machine: {platform.machine()} {platform.processor() or ''}, {platform.python_version()} "
           "(replay only: no builds, no timing; the sweeps' own machines are in their raw files)",
           f"- command: `python benchmarks/search_replay.py --seeds {args.seeds}`",
           f"- sweeps: {len(sweeps)} recorded full sweeps ({', '.join(s['name'] for s in sweeps)}), "
           f"each replayed under 3 objectives; raw files in benchmarks/results/raw/search_sweeps/",
           "- tied: the strategy's winner is the brute-force winner or statistically tied with it "
           "(farm.reports.best.select_best on the recorded samples); bayes runs once per TPE seed",
           "- GPU sweeps under benchmarks/results/raw/ (issue 4) kept no raw samples, so they are not replayed",
           "",
           "| sweep | objective | brute-force winner (precision batch knobs) | brute | quick | bayes |",
           "| --- | --- | --- | --- | --- | --- |", *lines, "", "## Summary", "",
           "| strategy | runs | tied with brute force | builds / space |", "| --- | --- | --- | --- |"]
    for strategy, t in totals.items():
        out.append(f"| {strategy} | {t['runs']} | {t['tied']}/{t['runs']} ({100 * t['tied'] / max(1, t['runs']):.0f} %) | "
                   f"{t['builds']}/{t['space']} ({100 * t['builds'] / max(1, t['space']):.1f} %) |")
    out += ["", f"Screening (sequential test, alpha 0.05): {drop_stats['drops']} candidates dropped, "
            f"{drop_stats['false']} of them tied with the brute-force winner on the full data "
            f"({100 * drop_stats['false'] / max(1, drop_stats['drops']):.1f} %); the test stopped after "
            f"{drop_stats['used']} of {drop_stats['all']} recorded samples of the built configurations "
            f"({100 * drop_stats['used'] / max(1, drop_stats['all']):.0f} %).", ""]
    args.output.write_text("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
