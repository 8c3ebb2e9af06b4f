"""Scale benchmark: the HTML report and the dashboard page of one sweep of
2,000 jobs (issue 24, finding 13: 66-79 s at 2,000 jobs; goal under 5 s).

Seeds a SQLite results database through the real schema (farm.db.upgrade)
with executemany: one sweep over 4 device classes x 3 backends x 4
precisions x 8 batch sizes x 5 profiles (~2,000 jobs, 1,000 raw samples each,
as a 3 s measurement of a 3 ms engine keeps), then times, best of 3:

- ``farm report ID --format html`` (its code path: load_frame, find_best,
  report_html), for the jobs view and the cross-device view;
- the dashboard's ``/sweep/ID`` page (dashboards.pages.sweep_page).

    python benchmarks/report_html_scale.py [--jobs 2000] [--samples 1000] [--db /tmp/farm-html-scale.db]
        [--reuse] [--profile] [--write benchmarks/results/report_html_scale.md]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DEVICES = ("gpu.nvidia-h100", "gpu.nvidia-l4", "gpu.nvidia-a100", "cpu.x86_64.xeon")
BACKENDS = ("tensorrt", "tensorrt-rtx", "onnxruntime")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)
PROFILES = ("p0", "p1", "p2", "p3", "p4", "p5")
SWEEP = "html-scale"


def seed(db_path: Path, jobs: int, samples: int, seed_value: int = 5) -> None:
    from farm.db import upgrade

    db_path.unlink(missing_ok=True)
    upgrade(f"sqlite:///{db_path}")
    rng = np.random.default_rng(seed_value)
    configs = list(itertools.product(DEVICES, BACKENDS, PRECISIONS, BATCHES, PROFILES))[:jobs]
    con = sqlite3.connect(db_path)
    con.execute("INSERT INTO models (id, sha256, name, path, size_bytes, inputs, created_at) "
                "VALUES (1, ?, 'scale-model.onnx', '/models/scale-model.onnx', 1, '[]', '2026-01-01 00:00:00')",
                ("0" * 64,))
    con.execute("INSERT INTO sweeps (id, name, model_id, spec, cancelled, created_at) "
                "VALUES (?, 'html scale', 1, '{}', 0, '2026-01-01 00:00:00')", (SWEEP,))
    speed = {d: 1.0 + i * 0.5 for i, d in enumerate(DEVICES)}
    factor = {"tensorrt": 1.0, "tensorrt-rtx": 1.1, "onnxruntime": 2.5, "fp32": 1.0, "fp16": 0.55, "bf16": 0.6,
              "int8": 0.35}
    rows_jobs, rows_measurements = [], []
    for i, (device, backend, precision, batch, profile) in enumerate(configs):
        base = speed[device] * factor[backend] * factor[precision] * batch ** 0.8 * (1 + int(profile[1:]) * 0.3)
        raw = np.round(base * (1.0 + rng.gamma(4.0, 0.01, size=samples)), 5)
        p50, p90, p95, p99 = np.percentile(raw, [50, 90, 95, 99]).tolist()
        mean, stdev = float(raw.mean()), float(raw.std(ddof=1))
        job_id = f"j{i:06d}"
        ok = not (precision == "int8" and profile == "p0")
        rows_jobs.append((job_id, SWEEP, i, job_id, backend, "1.0", precision, batch, profile, device, "{}", "done",
                          1, f"{i:064x}", f"{SWEEP}|{profile}", "2026-01-01 00:00:00"))
        rows_measurements.append((job_id, 1, 1, "[" + ",".join(map(str, raw.tolist())) + "]", samples, mean, p50,
                                  p90, p95, p99, stdev, stdev / mean, batch * 1000.0 / mean, 30.0 + batch,
                                  int(1e6) + batch, 100.0 + batch, 0.5 if not ok else 0.01, ok,
                                  "pass" if ok else "fail", "[]", "2026-01-01 00:00:00"))
    con.executemany("INSERT INTO jobs (id, sweep_id, seq, key, backend, backend_version, precision, batch_size, "
                    "profile, device_class, config, status, attempts, artifact_sha256, workload, created_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows_jobs)
    con.executemany("INSERT INTO measurements (job_id, attempt, measured, samples_ms, count, mean_ms, p50_ms, "
                    "p90_ms, p95_ms, p99_ms, stdev_ms, cv, throughput, build_s, artifact_size, memory_mb, "
                    "rel_l2_error, accuracy_pass, accuracy_status, flags, created_at, accuracy, telemetry, "
                    "environment, build_info) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'{}','{}','{}','{}')",
                    rows_measurements)
    con.commit()
    con.close()


def html_report(view: str) -> str:
    """``farm report ID --format html --view VIEW -o FILE``, in process (the command's own code path)."""
    import tempfile

    from click.testing import CliRunner

    from farm.cli.commands import cli

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.html"
        result = CliRunner().invoke(cli, ["report", SWEEP, "--format", "html", "--view", view, "-o", str(out)],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return out.read_text()


def dashboard_page() -> str:
    from dashboards.pages import sweep_page

    return sweep_page(SWEEP).html()


def best_of(fn, repeats: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        size = len(fn())
        times.append(time.perf_counter() - start)
    return min(times), size


def machine() -> str:
    import pandas

    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{os.cpu_count()} vCPU {cpu}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
            f"pandas {pandas.__version__}, numpy {np.__version__}; load average at the start "
            f"{os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/farm-html-scale.db"))
    parser.add_argument("--reuse", action="store_true", help="Time the existing database.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one jobs-view render (top 25).")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    if not args.reuse:
        seed(args.db, args.jobs, args.samples)
    os.environ["FARM_DB_URL"] = f"sqlite:///{args.db}"
    os.environ.setdefault("FARM_HOME", str(args.db.parent / "farm-html-scale-home"))
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        html_report("jobs")  # imports and first connection outside the profile
        profiler.runcall(html_report, "jobs")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        return
    results = {name: best_of(fn, args.repeats) for name, fn in (
        ("`farm report ID --format html` (jobs view)", lambda: html_report("jobs")),
        ("`farm report ID --format html --view cross-device`", lambda: html_report("cross-device")),
        ("dashboard `/sweep/ID` page", dashboard_page))}
    lines = [f"| {name} | {seconds:.2f} | {size / 1e6:.2f} |" for name, (seconds, size) in results.items()]
    print("\n".join(lines))
    if args.write:
        command = "python benchmarks/report_html_scale.py " + " ".join(sys.argv[1:])
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        args.write.write_text(
            f"# HTML report and dashboard page of a {args.jobs:,}-job sweep\n\n"
            f"Command: `{command}` (every figure below is this command's output; the file is written by the "
            f"script). Commit {commit}.\n\nMachine: {machine()}. Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n\n"
            f"Data: one sweep of {args.jobs:,} done jobs ({len(DEVICES)} device classes x {len(BACKENDS)} backends "
            f"x {len(PRECISIONS)} precisions x {len(BATCHES)} batch sizes x profiles), {args.samples:,} raw samples "
            f"per measurement, seeded through the real schema.\n\n"
            "| what (best of 3, in process) | seconds | MB of HTML |\n|---|---|---|\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
