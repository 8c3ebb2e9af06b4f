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
