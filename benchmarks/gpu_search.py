"""Live search vs brute force on one GPU, on the same real model.

Phase 1: a ``quick`` search through the farm (``farm sweep submit`` +
``farm sweep drive``, one pinned worker), finals included. Phase 2: the
brute-force sweep of the same space in the same farm, so the jobs the search
ran are reused (identical keys) and only the rest is built: brute force's
build count is the whole space either way, and one device call holds both
(``--separate`` runs phase 2 in a fresh farm instead). Records both winners,
whether the search's winner is the brute-force winner or statistically tied
with it (``farm best`` over the brute-force results), build counts, wall
times, the finals' rounds with their NVML clocks, and the brute-force sweep
in the recorded-sweep format (raw samples) for benchmarks/search_replay.py.

    python benchmarks/gpu_search.py --out DIR [--model examples/models/ppocr_det.onnx]
    python benchmarks/gpu_search.py --out DIR --model magika.onnx --inputs bytes=2048 --data none \
        --batches 1,2,4,8,16,32,64 --tag magika [--brute-only] [--measure '{"cuda_graph": false}']

``--brute-only`` records one full brute-force sweep (no search phase).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FARM = [sys.executable, "-m", "farm"]
MEASURE = {"warmup_ms": 100, "duration_ms": 500, "iterations": 10, "max_remeasure": 0, "cuda_graph": True}
BUILD = {"torch": {"mode": "default"}}


def farm(*args: str, env: dict, check: bool = True, timeout: float = 600) -> str:
    result = subprocess.run([*FARM, *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise SystemExit(f"farm {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def parse_inputs(text: str) -> dict[str, list[int]]:
    """'x=3x320x320;y=16' -> {input: dims after the batch axis}."""
    out = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        name, _, dims = item.partition("=")
        out[name] = [int(d) for d in dims.split("x")] if dims else []
    return out


def spec(model: Path, inputs: dict, batches, search: dict | None, kind: dict, data: Path | None = None,
         measure: dict | None = None, profile: str = "p") -> dict:
    top = max(batches)
    out = {"name": f"{model.stem}-{'search' if search else 'brute'}", "model": str(model),
           "backends": [kind["backend"]], "precisions": kind["precisions"], "batch_sizes": batches,
           "devices": kind["devices"], "measure": measure or MEASURE,
           "build": BUILD if kind["backend"] == "torch" else {}, "profiles": [{"name": profile, "inputs": {
               name: {"min": [1, *dims], "opt": [top, *dims], "max": [top, *dims]} for name, dims in inputs.items()}}]}
    if search:
        out["search"] = search
    if data:
        out["data"] = str(data)
    return out


def phase(name: str, home: Path, spec_body: dict, deadline: float, drive: bool, selector: str) -> dict:
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FARM_HOME": str(home), "TORCHINDUCTOR_CACHE_DIR": str(home / "inductor")}
    path = home / f"{name}.json"
    path.write_text(json.dumps(spec_body))
    subprocess.run([sys.executable, "-m", "workers", "discover", "--register"], env=env, check=True,
                   capture_output=True)
    start = time.time()
    sweep_id = farm("sweep", "submit", str(path), env=env).strip().splitlines()[-1]
    log = open(home / f"workers-{name}.log", "ab")
    launcher = subprocess.Popen([sys.executable, "-m", "workers", "start", "--device", selector, "--loglevel",
                                 "WARNING"], env=env, stdout=log, stderr=subprocess.STDOUT)
    driver = (subprocess.Popen([*FARM, "sweep", "drive", sweep_id], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True) if drive else None)
    try:
        while time.time() < deadline:
            status = json.loads(farm("sweep", "status", sweep_id, "--format", "json", env=env))
            if (driver and driver.poll() is not None) or (not driver and status["finished"] == status["total"]):
                break
            time.sleep(2.0)
        wall_s = time.time() - start
    finally:
        if driver and driver.poll() is None:
            driver.send_signal(signal.SIGTERM)
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(timeout=60)
    status = json.loads(farm("sweep", "status", sweep_id, "--format", "json", env=env))
    best = farm("best", "--sweep", sweep_id, "--objective", "throughput", "--format", "json", env=env, check=False)
    return {"sweep_id": sweep_id, "wall_s": round(wall_s, 1), "status": status,
            "driver_output": driver.stdout.read()[-4000:] if driver else None,
            "report": json.loads(farm("report", sweep_id, "--format", "json", env=env)),
            "best": json.loads(best) if best.strip() else [], "db": dump(env, sweep_id)}


def dump(env: dict, sweep_id: str) -> dict:
    """Raw samples of every job and every finals round, from the database."""
    code = """
import json, sys
from sqlalchemy import select
from farm.db import FinalRound, Finals, Job, Measurement, session_scope
rows, rounds = [], []
with session_scope() as s:
    for j in s.scalars(select(Job).where(Job.sweep_id == sys.argv[1]).order_by(Job.seq)):
        m = s.scalar(select(Measurement).where(Measurement.job_id == (j.result_job_id or j.id))
                     .order_by(Measurement.attempt.desc()).limit(1))
        rows.append({"job_id": j.id, "status": j.status, "backend": j.backend, "precision": j.precision,
                     "batch_size": j.batch_size, "profile": j.profile, "device_class": j.device_class,
                     "build": j.config.get("build", {}), "error": (j.error or "")[-500:] or None,
                     "samples_ms": m.samples_ms if m else [], "memory_mb": m.memory_mb if m else None,
                     "build_s": m.build_s if m else None, "artifact_size": m.artifact_size if m else None,
                     "accuracy_pass": m.accuracy_pass if m else None, "rel_l2_error": m.rel_l2_error if m else None,
                     "accuracy_status": m.accuracy_status if m else None,
                     "rel_l2_limit": ((m.accuracy or {}).get("tolerances") or {}).get("max_rel_error") if m else None,
                     "flags": m.flags if m else [], "sm_clock_mhz": (m.telemetry or {}).get("sm_clock_mhz") if m else None})
    for f in s.scalars(select(Finals).where(Finals.sweep_id == sys.argv[1])):
        for r in s.scalars(select(FinalRound).where(FinalRound.finals_id == f.id).order_by(FinalRound.id)):
            rounds.append({"finals_id": f.id, "attempt": r.attempt, "round": r.round, "position": r.position,
                           "job_id": r.job_id, "p50_ms": r.p50_ms, "samples": len(r.samples_ms),
                           "sm_clock_mhz": (r.telemetry or {}).get("sm_clock_mhz"),
                           "power_w": (r.telemetry or {}).get("power_w"),
                           "temperature_c": (r.telemetry or {}).get("temperature_c"), "flags": r.flags})
json.dump({"rows": rows, "final_rounds": rounds}, sys.stdout)
"""
    out = subprocess.run([sys.executable, "-c", code, sweep_id], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def compare(search: dict, brute: dict) -> dict:
    result = (search["status"].get("search") or {}).get("result") or {}
    winner_job = next((e.get("winner") for e in result.values()), None)
    rows = {r["job_id"]: r for r in search["report"]}
    winner = rows.get(winner_job)
    config = (winner["precision"], winner["batch_size"]) if winner else None
    brute_best = [(r["precision"], r["batch_size"], r["role"]) for r in brute["best"]]
    return {"search_winner": config, "brute_winner": next(((p, b) for p, b, role in brute_best if role == "winner"),
                                                          None),
            "brute_winner_and_ties": brute_best,
            "tied": config is not None and any((p, b) == config for p, b, _ in brute_best),
            "search_builds": (search["status"].get("search") or {}).get("built"),
            "search_space": (search["status"].get("search") or {}).get("space"),
            "brute_builds": len(brute["report"]),
            "brute_built_new_in_phase_2": sum(1 for r in brute["report"] if not r["reused"]),
            "build_s_search": round(sum(r["build_s"] or 0 for r in search["report"] if not r["reused"]), 1),
            "build_s_brute": round(sum(r["build_s"] or 0 for r in brute["report"]), 1),
            "search_wall_s": search["wall_s"], "brute_wall_s": brute["wall_s"]}


def render_partial(raw: dict, machine: str, source: Path) -> str:
    """A run cut short after its search phase: what the search did, from its raw JSON."""
    search = raw["search"]
    info = search["status"].get("search") or {}
    lines = ["# Live search on one GPU (search phase only: the brute-force phase was cut short)", "",
             f"- rendered by: `python benchmarks/gpu_search.py --render {source}`",
             f"- machine: {' / '.join(l.strip() for l in machine.splitlines() if l.strip())}",
             f"- search: {info.get('strategy')} ({info.get('objective')}), state {info.get('state')}: "
             f"{info.get('saving')}; {info.get('pruned')} pruned, {info.get('skipped')} skipped; wall {search['wall_s']} s",
             "", "| job | precision | batch | status | p50 ms | samples/s | build s | rel L2 | accuracy |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in search["report"]:
        lines.append(f"| {r['job_id']} | {r['precision']} | {r['batch_size']} | {r['status']} | "
                     f"{r['latency_p50_ms']:.4g} | {r['throughput']:.5g} | {r['build_s']:.1f} | {r['rel_l2_error']:.3g} | "
                     f"{'pass' if r['accuracy_pass'] else 'FAIL'} |")
    lines += ["", "Pruned and skipped, with the search's reasons:", ""]
    lines += [f"- {count} {reason}" for reason, count in sorted((info.get("reasons") or {}).items())]
    for group, entry in sorted((info.get("result") or {}).items()):
        lines.append(f"- result for {group}: winner {entry.get('winner')} ({entry.get('decided_by')}); "
                     f"dropped: {entry.get('dropped')}")
    lines += ["", "Driver output:", "", "```", *(search.get("driver_output") or "").strip().splitlines(), "```", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--render", type=Path, help="write the markdown of a saved gpu_search.json (to -o) and stop")
    parser.add_argument("--machine", type=Path, help="with --render: the run's machine.txt")
    parser.add_argument("-o", "--output", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--model", type=Path, default=ROOT / "examples" / "models" / "ppocr_det.onnx")
    parser.add_argument("--size", type=int, default=320, help="the detector's H and W (without --inputs)")
    parser.add_argument("--inputs", help="input dims after the batch axis, e.g. 'bytes=2048' or 'x=3x48x192' "
                                         "(default: x=3xSIZExSIZE)")
    parser.add_argument("--tag", help="name of the recorded sweep (default: the model's stem and size)")
    parser.add_argument("--measure", default="{}", help="JSON merged over the measure block")
    parser.add_argument("--brute-only", action="store_true", help="record one brute-force sweep, no search")
    parser.add_argument("--data", default=str(ROOT / "examples" / "data" / "text_pages.npz"),
                        help="input samples (.npz) for timing and the accuracy gate; 'none' for synthetic inputs. "
                             "A text detector on random noise outputs ~0 everywhere and fails every accuracy "
                             "gate (seen on the H200 on 2026-12-02), so the default is the repository's text pages")
    parser.add_argument("--batches", default="1,2,4,8,16,32")
    parser.add_argument("--work", type=Path, default=Path("/tmp/farm-gpu-search"))
    parser.add_argument("--search-s", type=float, default=140.0)
    parser.add_argument("--brute-s", type=float, default=190.0)
    parser.add_argument("--cpu", action="store_true", help="dry run of this script with ONNX Runtime on the CPU")
    parser.add_argument("--separate", action="store_true", help="brute force in a fresh farm (builds everything)")
    args = parser.parse_args()
    if args.render:
        raw = json.loads(args.render.read_text())
        machine = args.machine.read_text() if args.machine else ""
        text = (render_partial(raw, machine, args.render) if raw.get("partial")
                else markdown(raw, raw["search"], raw["brute"], machine or None))
        args.output.write_text(text)
        return 0
    if args.out is None:
        parser.error("--out is required")
    kind = ({"backend": "onnxruntime", "precisions": ["fp32", "int8"], "devices": "cpu", "selector": "cpu"}
            if args.cpu else {"backend": "torch", "precisions": ["fp32", "fp16", "bf16"], "devices": "gpu",
                              "selector": "0"})
    args.out.mkdir(parents=True, exist_ok=True)
    batches = [int(b) for b in args.batches.split(",")]
    inputs = parse_inputs(args.inputs or f"x=3x{args.size}x{args.size}")
    tag = args.tag or f"{args.model.stem}_{args.size}"
    measure = {**MEASURE, **json.loads(args.measure)}
    search_block = {"strategy": "quick", "objective": "throughput",
                    "finals": {"rounds": 3, "warmup_ms": 100, "duration_ms": 300}}
    started = time.time()
    data = None if args.data == "none" else Path(args.data).resolve()
    model = args.model.resolve()
    meta = {"command": " ".join(sys.argv), "model": str(args.model), "inputs": inputs,
            "machine_file": str(args.out / "machine.txt") if (args.out / "machine.txt").exists() else "",
            "measure": measure, "build": BUILD}
    if args.brute_only:
        brute = phase(f"brute-{tag}", args.work / f"farm-{tag}", spec(model, inputs, batches, None, kind, data, measure),
                      time.time() + args.brute_s, drive=False, selector=kind["selector"])
        record_sweep(args, kind, tag, meta, batches, brute)
        return 0
    search = phase("search", args.work / "farm", spec(model, inputs, batches, search_block, kind, data, measure),
                   time.time() + args.search_s, drive=True, selector=kind["selector"])
    (args.out / "gpu_search.json").write_text(json.dumps({"partial": "search phase only", "search": search}))
    if not any(r["status"] == "done" for r in search["report"]):
        errors = sorted({(r.get("error") or "").strip().splitlines()[-1][:300] for r in search["report"] if r.get("error")})
        print(f"no configuration of {args.model.name} finished in the search phase: {errors}", file=sys.stderr)
        return 3  # the model does not run on this backend here: no brute-force phase
    brute = phase("brute", args.work / ("farm-brute" if args.separate else "farm"),
                  spec(model, inputs, batches, None, kind, data, measure), time.time() + args.brute_s, drive=False,
                  selector=kind["selector"])
    summary = {**meta, "search_block": search_block, "wall_s": round(time.time() - started, 1),
               "comparison": compare(search, brute)}
    (args.out / "gpu_search.json").write_text(json.dumps({**summary, "search": search, "brute": brute}, indent=1))
    record_sweep(args, kind, tag, meta, batches, brute)
    (args.out / "gpu_search.md").write_text(markdown(summary, search, brute))
    print(json.dumps(summary["comparison"], indent=1))
    return 0


def record_sweep(args, kind: dict, tag: str, meta: dict, batches: list[int], brute: dict) -> None:
    """The brute-force sweep in the recorded-sweep format of benchmarks/search_replay.py, when it is complete."""
    rows = brute["db"]["rows"]
    if not rows or not all(r["status"] in ("done", "failed", "unsupported") for r in rows):
        print(f"sweep {tag} incomplete: not recorded", file=sys.stderr)
        return
    name = f"{'cpu' if args.cpu else 'gpu_h200'}_{tag}"
    (args.out / f"{name}.json").write_text(json.dumps({
        "name": name, "model": args.model.name, "inputs": meta["inputs"], "device": kind["devices"],
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": meta["command"],
        "wall_s": brute["wall_s"], "axes": {"precision": kind["precisions"], "batch_size": batches},
        "measure": meta["measure"], "build": meta["build"], "rows": rows}, indent=1))


def markdown(summary: dict, search: dict, brute: dict, machine: str | None = None) -> str:
    c = summary["comparison"]
    if machine is None:
        path = Path(summary.get("machine_file") or "")
        machine = path.read_text() if summary.get("machine_file") and path.exists() else ""
    rounds = search["db"]["final_rounds"]
    lines = ["# Live search vs brute force on one GPU", "",
             f"- date: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}",
             f"- command: `{summary['command']}` (through benchmarks/gpu_search.sh)",
             f"- machine: {' / '.join(line.strip() for line in machine.splitlines() if line.strip())}",
             f"- model: {summary['model']} (inputs after the batch axis {json.dumps(summary['inputs'])}), backend "
             f"{search['report'][0]['backend'] if search['report'] else '?'}, build {json.dumps(summary['build'])}, "
             f"measure {json.dumps(summary['measure'])}",
             f"- search block: `{json.dumps(summary['search_block'])}`", "",
             "| | search (quick) | brute force |", "| --- | --- | --- |",
             f"| configurations built | {c['search_builds']} of {c['search_space']} | {c['brute_builds']} "
             f"({c['brute_built_new_in_phase_2']} new in its own run, the rest reused from the search's identical jobs) |",
             f"| build time (sum of build_s) | {c['build_s_search']} s | {c['build_s_brute']} s |",
             f"| winner (precision, batch) | {c['search_winner']} | {c['brute_winner']} |",
             f"| wall time of the phase | {c['search_wall_s']} s | {c['brute_wall_s']} s |", "",
             f"Search winner statistically tied with (or equal to) brute force's: **{c['tied']}** "
             f"(brute force's winner and ties by `farm best --objective throughput`: {c['brute_winner_and_ties']}).",
             "", "## Finals (interleaved on one worker)", "",
             "| finals | round | position | job | p50 ms | SM clock MHz (min/median/max) | power W (median) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rounds:
        clock = r.get("sm_clock_mhz") or {}
        power = (r.get("power_w") or {}).get("median") if isinstance(r.get("power_w"), dict) else r.get("power_w")
        lines.append(f"| {r['finals_id']} | {r['round']} | {r['position']} | {r['job_id']} | {r['p50_ms']:.4g} | "
                     f"{clock.get('min')}/{clock.get('median')}/{clock.get('max')} | {power} |")
    lines += ["", "## Search status", "", "```", *(search.get("driver_output") or "").strip().splitlines()[-12:], "```",
              "", "Raw: benchmarks/results/raw/gpu_search.json (both phases: status, report rows, raw samples, "
              "finals rounds).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
