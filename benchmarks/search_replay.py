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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from farm.search.config import SearchConfig  # noqa: E402
from farm.search.replay import brute_truth, load, run  # noqa: E402

RAW = ROOT / "benchmarks" / "results" / "raw" / "search_sweeps"


def scenarios(sweep: dict) -> list[tuple[str, SearchConfig]]:
    """Latency; throughput; throughput under a p99 bound that rules out part
    of the space (the median p99 of the recorded configurations)."""
    p99 = [o.p99_ms for o in sweep["observations"].values() if o.p99_ms is not None]
    bound = float(np.median(p99))
    return [("latency", SearchConfig(objective="latency")),
            ("throughput", SearchConfig(objective="throughput")),
            (f"throughput, p99<={bound:.3g}ms", SearchConfig(objective="throughput",
                                                             constraints={"max_latency_ms": bound}))]


def describe(sweep: dict, job_id: str | None) -> str:
    if job_id is None:
        return "-"
    c = sweep["candidates"][int(job_id[1:])]
    return " ".join(str(v) for k, v in c.axes.items() if k != "backend")


STRATEGIES = (("brute", "brute", None), ("quick", "quick", None), ("quick 20 %", "quick", "20%"),
              ("bayes 20 %", "bayes", "20%"))
NEAR = 0.05  # "within 5 %" of the brute-force winner's objective value


def _value(sweep: dict, job_id: str, objective: str) -> float:
    obs = sweep["observations"][int(job_id[1:])]
    return obs.p50_ms if objective == "latency" else obs.throughput


def _near(sweep: dict, job_id: str | None, truth: str, objective: str) -> bool:
    if job_id is None:
        return False
    got, best = _value(sweep, job_id, objective), _value(sweep, truth, objective)
    return got <= best * (1 + NEAR) if objective == "latency" else got >= best * (1 - NEAR)


def replay_all(sweeps: list[dict], seeds: int) -> tuple[list[str], dict, dict]:
    lines = []
    totals = {label: {"runs": 0, "tied": 0, "near": 0, "builds": 0, "space": 0} for label, _, _ in STRATEGIES}
    drops = {"drops": 0, "false": 0, "used": 0, "all": 0}
    for sweep in sweeps:
        space = len(sweep["candidates"])
        for label, base in scenarios(sweep):
            tied_sets, brute_winner = brute_truth(sweep, base)
            cells = []
            for name, strategy, budget in STRATEGIES:
                runs = range(seeds) if strategy == "bayes" else [0]
                tied = near = 0
                builds, shown = [], None
                for seed in runs:
                    config = SearchConfig(strategy=strategy, objective=base.objective, constraints=base.constraints,
                                          seed=seed, budget=budget)
                    result = run(sweep, config)
                    ok = all(result["winners"].get(cls) in members for cls, members in tied_sets.items())
                    close = all(_near(sweep, result["winners"].get(cls), truth, base.objective)
                                for cls, truth in brute_winner.items())
                    tied, near = tied + ok, near + close
                    builds.append(result["builds"])
                    shown = shown or result["winners"]
                    t = totals[name]
                    t["runs"] += 1
                    t["tied"] += ok
                    t["near"] += close
                    t["builds"] += result["builds"]
                    t["space"] += space
                    for idx in result["drops"]:
                        drops["drops"] += 1
                        drops["false"] += any(f"c{idx}" in members for members in tied_sets.values())
                    drops["used"] += result["samples_used"]
                    drops["all"] += result["samples_all"]
                cells.append(f"{np.mean(builds):.1f}/{space}, tied {tied}/{len(runs)}, near {near}/{len(runs)}, "
                             f"{describe(sweep, next(iter(shown.values()), None))}")
            truth = describe(sweep, next(iter(brute_winner.values()), None))
            lines.append(f"| {sweep['name']} | {label} | {truth} | " + " | ".join(cells) + " |")
    return lines, totals, drops


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5, help="bayes runs per scenario (TPE seeds 0..N-1)")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "benchmarks" / "results" / "search_replay.md")
    args = parser.parse_args()
    sweeps = [load(p) for p in sorted(RAW.glob("*.json"))]
    lines, totals, drops = replay_all(sweeps, args.seeds)
    out = ["# Search replay over recorded full sweeps", "",
           f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
           f"- machine: {platform.machine()} {platform.processor() or ''}, Python {platform.python_version()} "
           "(a replay: no builds, no timing; where each sweep was recorded is in its raw file)",
           f"- command: `python benchmarks/search_replay.py --seeds {args.seeds}`",
           f"- sweeps: {len(sweeps)} recorded full sweeps ({', '.join(s['name'] for s in sweeps)}), each "
           "replayed under 3 objectives; raw files (every configuration's raw samples) in "
           "benchmarks/results/raw/search_sweeps/",
           "- strategies: brute; quick without a budget; quick and bayes with `budget: 20%`; bayes once per TPE "
           "seed 0..N-1",
           "- tied: the strategy's winner is brute force's winner or statistically tied with it, by the farm's "
           "ranking (farm.reports.best.select_best: 95 % bootstrap intervals of the recorded samples overlap, "
           "within 25 %)",
           f"- near: the winner's objective value is within {NEAR:.0%} of brute force's winner's. Every "
           "configuration was measured once, minutes apart on shared CPUs; the intervals hold only "
           "within-run noise, so run-to-run drift larger than them makes 'tied' strict (the live farm settles "
           "that with interleaved finals, which a replay cannot re-run)",
           "- GPU sweeps kept under benchmarks/results/raw/ by issue 4 have no raw samples and are not replayed",
           "", "| sweep | objective | brute-force winner (precision batch knobs) | "
           + " | ".join(label for label, _, _ in STRATEGIES) + " |",
           "| --- | --- | --- | " + " | ".join("---" for _ in STRATEGIES) + " |", *lines, "", "## Summary", "",
           "| strategy | runs | tied with brute force | within 5 % | builds / space |",
           "| --- | --- | --- | --- | --- |"]
    for label, t in totals.items():
        runs = max(1, t["runs"])
        out.append(f"| {label} | {t['runs']} | {t['tied']}/{t['runs']} ({100 * t['tied'] / runs:.0f} %) | "
                   f"{t['near']}/{t['runs']} ({100 * t['near'] / runs:.0f} %) | "
                   f"{t['builds']}/{t['space']} ({100 * t['builds'] / max(1, t['space']):.1f} %) |")
    for label in ("quick 20 %", "bayes 20 %"):
        t = totals[label]
        met = t["tied"] >= 0.9 * t["runs"] and t["builds"] <= 0.2 * t["space"]
        out.append(f"\nGoal for {label} (tied on >= 90 % of the replays with <= 20 % of the builds): "
                   f"{'met' if met else 'NOT met'} ({100 * t['tied'] / max(1, t['runs']):.0f} % tied, "
                   f"{100 * t['builds'] / max(1, t['space']):.1f} % of the builds).")
    out += ["", f"Screening (sequential test, alpha 0.05): {drops['drops']} candidates dropped, {drops['false']} of "
            f"them tied with brute force's winner on the full data ({100 * drops['false'] / max(1, drops['drops']):.1f} %); "
            f"the test stopped after {drops['used']} of {drops['all']} recorded samples of the built configurations "
            f"({100 * drops['used'] / max(1, drops['all']):.0f} %).", ""]
    args.output.write_text("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
