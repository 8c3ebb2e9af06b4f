"""Scale benchmark: best-per-device over 1,000,000 measurement rows.

Seeds a SQLite results database through the real schema (farm.db.upgrade),
bulk-inserting with executemany (the ORM would take minutes), then times
``farm.reports.find_best`` -- the exact code path ``farm best`` uses -- and
``farm best --format json`` end to end.

    python benchmarks/report_scale.py [--rows 1000000] [--db /tmp/farm-scale.db] [--reuse] [--write FILE]

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
    con.commit()
    con.close()


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
    con.executemany("INSERT INTO jobs (id, sweep_id, seq, key, backend, backend_version, precision, batch_size, "
                    "profile, device_class, config, status, attempts, artifact_sha256, created_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", jobs)
    con.executemany("INSERT INTO measurements (job_id, attempt, measured, samples_ms, count, mean_ms, p50_ms, "
                    "p90_ms, p95_ms, p99_ms, stdev_ms, cv, throughput, build_s, artifact_size, memory_mb, "
                    "rel_l2_error, accuracy_pass, flags, created_at, accuracy, telemetry, environment, build_info) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'{}','{}','{}','{}')", measurements)


def time_best(db_path: Path, repeats: int = 3) -> tuple[float, int]:
    os.environ["FARM_DB_URL"] = f"sqlite:///{db_path}"
    from farm.reports import Constraints, find_best

    timings, winners = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        best = find_best(model="scale-model", constraints=Constraints(objective="latency"))
        timings.append(time.perf_counter() - start)
        winners = int((best["role"] == "winner").sum())
    return min(timings), winners


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
        "workloads": one("SELECT count(*) FROM (SELECT DISTINCT device_class, profile FROM jobs)"),
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
            f"numpy {metadata.version('numpy')}; load average at the start {os.getloadavg()[0]:.1f}")


def write_results(path: Path, command: str, facts: dict, seeded_s: float | None, result: dict) -> None:
    seeded = f" in {seeded_s:.0f} s" if seeded_s is not None else " (an earlier run of the same command seeded it)"
    path.write_text(f"""# farm best over {facts['measurement_rows']:,} measurement rows

Command: `{command}` (every figure below is this command's output; the file
is written by the script).

Machine: {machine()}. Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.

Data, counted in the seeded database: {facts['measurement_rows']:,} jobs with one
measurement each ({SAMPLES_PER_ROW} raw samples per row), {facts['sweeps']} sweeps over
{facts['device_classes']} device classes and {facts['workloads']:,} (device class, workload)
groups, {facts['configurations']:,} distinct job keys ({facts['repeated_key_fraction']:.1%} of the rows
are re-runs of a key), {facts['failing_gate_fraction']:.2%} of the rows failing the accuracy gate;
seeded through the real schema (`farm.db.upgrade`) with `executemany`{seeded};
{facts['db_mb']:,} MB database.

| what | seconds |
|---|---|
| `farm.reports.find_best(model=...)` (the code path of `farm best MODEL`), best of 3 | **{result['best_per_device_s']}** |
| `farm best scale-model --format json`, whole process (interpreter and imports included) | {result['cli_best_json_s']} |

Output: {result['winners']:,} winners (one per device class and workload), each with its ties and
bootstrap intervals.

How: candidates.py narrows in SQL (one grouped pass for each group's best
figure, then one scan for the rows within the tie window of it, through a
temporary table of bounds when there are many groups; stale rows dropped by
indexed job key), and only the rows that can lead or tie are loaded with
their samples into pandas.
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/farm-scale.db"))
    parser.add_argument("--reuse", action="store_true", help="Reuse an already seeded --db.")
    parser.add_argument("--write", type=Path, help="Write the results file (markdown) here.")
    args = parser.parse_args()
    seeded_s = None
    if not args.reuse:
        start = time.perf_counter()
        seed(args.db, args.rows)
        seeded_s = time.perf_counter() - start
        print(f"seeded {args.rows} measurement rows in {seeded_s:.1f} s ({args.db})")
    facts = data_facts(args.db)
    seconds, winners = time_best(args.db)
    result = {**facts, "best_per_device_s": round(seconds, 3), "winners": winners,
              "cli_best_json_s": round(time_cli(args.db), 3), "machine": platform.machine(),
              "cpus": os.cpu_count(), "python": platform.python_version()}
    print(json.dumps(result))
    if args.write:
        command = "python benchmarks/report_scale.py " + " ".join(sys.argv[1:])
        write_results(args.write, command.strip(), facts, seeded_s, result)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
