"""Per-job farm overhead: how much of a job's wall time is the farm's own.

Runs a real farm on this machine: a private redis-server, a fresh database
on the PostgreSQL at --pg (or SQLite), N CPU workers started with
``python -m workers start``, and a sweep of --jobs jobs on a tiny CNN
(ONNX Runtime, fp32, a 10 ms timed loop). All jobs are queued before the
workers start, so the workers run back to back.

    overhead = job wall (claim .. result) - build_s - sum(timed samples)
    idle gap = next job's claim - this job's result, per worker

Every worker writes its per-phase times (FARM_PHASE_LOG, workers/phases.py),
so the report says where the time goes: claim, model fetch/verify,
reference outputs, result write, and between two jobs (message ack and the
next delivery). The first job of each worker (imports, first fetch) is left
out of the figures and reported apart.

    python benchmarks/farm_overhead.py --jobs 300 --workers 2 --runs 3 \
        --out benchmarks/results/farm_overhead.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MEASURE = {"warmup_ms": 0, "duration_ms": 10, "iterations": 5, "max_remeasure": 0}
# One intra-op thread: each worker measures on one core, as a GPU worker on its own device (two
# workers' ONNX Runtime pools of 2 spinning threads each on a 2-core host slow each other's farm work).
BUILD = {"onnxruntime": {"intra_op_num_threads": 1}}
BATCHES = (1, 2, 3, 4)  # each sweep: one job per batch size; sweeps repeat with --force
PHASE_ORDER = ("beat", "claim", "setup", "model", "build", "feeds", "load", "reference", "accuracy",
               "measure", "store", "record", "end")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def _redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                "--appendonly", "no", "--dir", str(workdir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    _wait(up, 10, "redis-server")
    return process, f"redis://127.0.0.1:{port}/0"


def _database(args, workdir: Path) -> tuple[str, callable]:
    if args.db == "sqlite":
        return f"sqlite:///{workdir / 'farm.db'}", lambda: None
    if args.db == "private":
        # A PostgreSQL server of the benchmark's own (initdb + pg_ctl): other
        # users of the shared server do not slow its round trips.
        from tests.integration.pgserver import PostgresServer

        server = PostgresServer()
        server.init()
        server.start()
        url = server.create_database("farm_bench")

        def stop():
            from farm.db.session import dispose_engines

            dispose_engines()
            server.destroy()

        return url, stop
    pg_admin = args.pg
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"farm_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        from farm.db.session import dispose_engines

        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return make_url(pg_admin).set(database=name).render_as_string(hide_password=False), drop


def _submit(model: Path, jobs: int, root: Path) -> list[str]:
    import yaml

    from farm.service import submit
    from farm.spec import load_spec

    spec_path = root / "bench.yaml"
    spec_path.write_text(yaml.safe_dump({"name": "overhead", "model": str(model), "backends": ["onnxruntime"],
                                         "precisions": ["fp32"], "batch_sizes": list(BATCHES), "devices": "cpu",
                                         "measure": MEASURE, "build": BUILD}))
    spec, sweeps, total = load_spec(spec_path), [], 0
    while total < jobs:
        sweeps.append(submit(spec, force=True).sweep_id)
        total += len(BATCHES)
    return sweeps


def _rows(sweeps: list[str]) -> list[dict]:
    from sqlalchemy import select

    from farm.db import Job, Measurement, session_scope

    with session_scope() as session:
        query = (select(Job.id, Job.worker, Job.status, Job.started_at, Job.finished_at, Measurement.build_s,
                        Measurement.samples_ms, Measurement.telemetry)
                 .join(Measurement, Measurement.job_id == Job.id).where(Job.sweep_id.in_(sweeps)))
        return [dict(row._mapping) for row in session.execute(query)]


def _done(sweeps: list[str], total: int) -> bool:
    from sqlalchemy import func, select

    from farm.db import Job, session_scope

    with session_scope() as session:
        finished = session.scalar(select(func.count()).select_from(Job).where(
            Job.sweep_id.in_(sweeps), Job.status.in_(("done", "failed", "unsupported"))))
    return finished >= total


def _all_exited(workers: list[subprocess.Popen], root: Path) -> bool:
    """Every worker launcher exited (e.g. its device already served): stop
    waiting, with the launchers' own words."""
    if any(process.poll() is None for process in workers):
        return False
    logs = " | ".join((path.read_text().strip().splitlines() or [""])[-1] for path in root.glob("home-*/launcher.log"))
    raise SystemExit(f"every worker exited before the sweeps finished: {logs}")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _summary(values: list[float]) -> dict:
    return {"n": len(values), "mean": statistics.fmean(values), "p50": _pct(values, 0.5),
            "p90": _pct(values, 0.9), "max": max(values)}


def analyse(rows: list[dict], phase_lines: list[dict]) -> dict:
    by_worker: dict[str, list[dict]] = {}
    for row in rows:
        by_worker.setdefault(row["worker"], []).append(row)
    overhead, gaps, first = [], [], []
    for worker_rows in by_worker.values():
        worker_rows.sort(key=lambda r: r["started_at"])
        for index, row in enumerate(worker_rows):
            wall = (row["finished_at"] - row["started_at"]).total_seconds() * 1000
            value = wall - row["build_s"] * 1000 - sum(row["samples_ms"])
            (first if index == 0 else overhead).append(value)
            if index:
                gaps.append((row["started_at"] - worker_rows[index - 1]["finished_at"]).total_seconds() * 1000)
    phases: dict[str, list[float]] = {}
    seen_first: set[str] = set()
    between: list[float] = []
    by_worker_lines: dict[str, list[dict]] = {}
    for line in phase_lines:
        by_worker_lines.setdefault(line["worker"], []).append(line)
    for worker, lines in by_worker_lines.items():
        lines.sort(key=lambda l: l["task_start"])
        for index, line in enumerate(lines):
            if worker not in seen_first:
                seen_first.add(worker)
                continue
            for name, ms in line["phases_ms"].items():
                phases.setdefault(name, []).append(ms)
            between.append((line["task_start"] - lines[index - 1]["task_end"]) * 1000)
    breakdown = {name: statistics.median(values) for name, values in phases.items()}
    breakdown["between tasks (ack + next delivery)"] = statistics.median(between) if between else float("nan")
    return {"overhead_ms": _summary(overhead), "gap_ms": _summary(gaps), "first_job_overhead_ms": first,
            "phases_p50_ms": breakdown, "jobs": len(rows)}


def run_once(args, root: Path) -> dict:
    from tests.onnx_models import make_cnn

    redis, broker = _redis(root)
    db_url, drop = _database(args, root)
    env = {"FARM_DB_URL": db_url, "FARM_BROKER_URL": broker, "FARM_STORE_URL": str(root / "store"),
           "FARM_HOME": str(root / "coordinator")}
    os.environ.update(env)
    workers: list[subprocess.Popen] = []
    try:
        from farm.db import upgrade
        from farm.db.session import dispose_engines

        upgrade(db_url)
        model = make_cnn(root / "tiny.onnx", dynamic_hw=False)
        sweeps = _submit(model, args.jobs, root)
        total = len(sweeps) * len(BATCHES)
        phase_log = root / "phases.jsonl"
        load_before = os.getloadavg()
        started = time.monotonic()
        for index in range(args.workers):
            home = root / f"home-{index}"
            home.mkdir()
            worker_env = {**os.environ, **env, "FARM_HOME": str(home), "FARM_WORKER_INSTANCE": f"w{index}",
                          "FARM_PHASE_LOG": str(phase_log), "PYTHONPATH": str(REPO)}
            log = open(home / "launcher.log", "ab")
            workers.append(subprocess.Popen([sys.executable, "-m", "workers", "start", "--device", "cpu",
                                             "--loglevel", args.loglevel], env=worker_env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True, cwd=root))
            log.close()
        _wait(lambda: _done(sweeps, total) or _all_exited(workers, root), args.timeout, "the sweeps to finish")
        elapsed = time.monotonic() - started
        load_after = os.getloadavg()
        rows = _rows(sweeps)
        lines = [json.loads(l) for l in phase_log.read_text().splitlines() if l.strip()]
        result = analyse(rows, lines)
        result.update(elapsed_s=elapsed, load_before=load_before, load_after=load_after,
                      statuses=sorted({r["status"] for r in rows}), expected=total)
        return result
    finally:
        for process in workers:
            if process.poll() is None:
                os.killpg(process.pid, 15)
        for process in workers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
        dispose_engines()
        drop()
        redis.kill()
        redis.wait()


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{socket.gethostname()}: {cpu}, {os.cpu_count()} logical CPUs, {platform.platform()}, " \
           f"Python {platform.python_version()}"


def _fmt(summary: dict) -> str:
    return f"p50 {summary['p50']:.1f}, mean {summary['mean']:.1f}, p90 {summary['p90']:.1f}, max {summary['max']:.1f}"


def report(args, results: list[dict]) -> str:
    command = " ".join(shlex.quote(a) for a in [f"python benchmarks/{Path(__file__).name}", *sys.argv[1:]])
    lines = ["# Per-job farm overhead", "",
             f"- Date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
             f"- Machine: {_machine()}",
             f"- Command: `{command}`",
             f"- Setup: {args.workers} CPU workers (`python -m workers start --device cpu`), private redis-server, "
             f"{ {'private': 'private PostgreSQL server', 'shared': 'shared PostgreSQL server', 'sqlite': 'SQLite'}[args.db]} "
             f"job table, tiny CNN (3x32x32, ONNX Runtime fp32, build {json.dumps(BUILD)}), "
             f"measure {json.dumps(MEASURE)}",
             "- overhead = job wall (claim to result) - build_s - sum(timed samples); idle gap = next claim - "
             "previous result on the same worker; both in ms, first job of each worker left out",
             f"- The machine is shared: load averages (1, 5, 15 min) are given before and after each run; the "
             f"benchmark ran at niceness {os.nice(0)}.", ""]
    lines += ["| run | jobs | overhead ms | idle gap ms | goal (p50 <= 10 / 5 ms) | first jobs ms | elapsed s | "
              "load before | load after |", "|---|---|---|---|---|---|---|---|---|"]
    for n, r in enumerate(results, 1):
        met = r["overhead_ms"]["p50"] <= 10 and r["gap_ms"]["p50"] <= 5
        lines.append(f"| {n} | {r['jobs']}/{r['expected']} {','.join(r['statuses'])} | {_fmt(r['overhead_ms'])} | "
                     f"{_fmt(r['gap_ms'])} | {'met' if met else 'missed'} | "
                     f"{', '.join(f'{v:.0f}' for v in r['first_job_overhead_ms'])} | "
                     f"{r['elapsed_s']:.1f} | {' '.join(f'{v:.2f}' for v in r['load_before'])} | "
                     f"{' '.join(f'{v:.2f}' for v in r['load_after'])} |")
    lines += ["", "## Where the time goes (per-phase median ms, per run)", "",
              "| phase | " + " | ".join(f"run {n}" for n in range(1, len(results) + 1)) + " |",
              "|---|" + "---|" * len(results)]
    names = [p for p in PHASE_ORDER if any(p in r["phases_p50_ms"] for r in results)]
    names += sorted({k for r in results for k in r["phases_p50_ms"]} - set(names))
    for name in names:
        lines.append(f"| {name} | " + " | ".join(f"{r['phases_p50_ms'].get(name, float('nan')):.2f}"
                                                 for r in results) + " |")
    lines += ["", "Phases: claim = device busy + guarded claim of the job (on PostgreSQL one autocommitted "
              "statement, workers/job_writes.py; retried while the database is down); setup = store, work dir, watchdog; model = the job's model from this worker's "
              "cache (verified) + job context; build = backend build (not overhead); feeds = input arrays; load = "
              "backend load; reference = ORT fp32 reference outputs (kept per worker); accuracy = backend inference "
              "+ comparison; measure = timing loop incl. warm-up; store = engine upload to the artifact store "
              "(verified); record = the job's end (job status, measurement, new artifact rows, device idle: on "
              "PostgreSQL one autocommitted statement); end = the task "
              "returning; between tasks = Celery's message ack, task events and the next delivery.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--db", choices=("private", "shared", "sqlite"), default="private",
                        help="job table: a private PostgreSQL server started for the run, a scratch database on "
                             "the server at --pg, or SQLite")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                        help="admin URL of the shared PostgreSQL server (--db shared)")
    parser.add_argument("--loglevel", default="WARNING", help="workers' log level")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--out", type=Path, help="write the Markdown report here (else stdout)")
    parser.add_argument("--json", type=Path, help="also write the raw figures as JSON")
    args = parser.parse_args()
    if not shutil.which("redis-server"):
        raise SystemExit("redis-server is not installed")
    results = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="farm-overhead-") as tmp:
            results.append(run_once(args, Path(tmp)))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "first_job_overhead_ms"}, default=str),
              file=sys.stderr)
    text = report(args, results)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    else:
        print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
