"""A real GPU sweep through farm workers on the farm's queue.

Generates the models (benchmarks/sweep_models.py), writes one spec per
model (torch backend x fp32/fp16/bf16 x batch sizes), registers this host's
devices, submits the sweeps, starts ``python -m workers start --device SEL``
(one pinned worker per selected GPU), waits until every job is final, and
records: wall time, per-GPU compute pids seen by NVML during the run, the
report rows, ``farm best --device <GPU name>`` and ``farm fetch`` with a
sha256 check of the fetched artifact. Writes one JSON file.

    python benchmarks/gpu_sweep.py --out DIR --gpus 0 --models resnetish,encoder
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FARM = [sys.executable, "-c", "import sys; from farm.cli import main; sys.exit(main())"]
# 200 ms warm-up, at least 1 s and 10 iterations (trtexec's default is 3 s:
# 1 s of graph replays is thousands of samples); re-measure once if flagged.
MEASURE = {"warmup_ms": 200, "duration_ms": 1000, "iterations": 10, "max_remeasure": 1}
# max-autotune with GEMMs and convolutions from ATen (cuBLAS/cuDNN) only; Inductor
# still autotunes the kernels it generates. On an H200 worker (torch 2.11),
# Triton template autotuning compiled the candidates one by one inside
# benchmarking: 22-42 s per GEMM shape for the encoder, 54-131 s per fp32
# convolution, so 18 jobs did not fit in a device call.
BUILD = {"torch": {"inductor": {"max_autotune_conv_backends": "ATEN", "max_autotune_gemm_backends": "ATEN"}}}
SHAPES = {"resnetish": (3, 224, 224), "encoder": (128, 384)}


def farm(*args: str, check: bool = True) -> str:
    result = subprocess.run([*FARM, *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise SystemExit(f"farm {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def write_spec(work: Path, model: str, precisions: list[str], batches: list[int]) -> Path:
    spec = {"name": f"{model}-gpu", "model": f"{model}.onnx", "backends": ["torch"], "precisions": precisions,
            "batch_sizes": batches, "devices": "gpu", "measure": MEASURE, "build": BUILD}
    path = work / f"{model}.yaml"
    path.write_text(json.dumps(spec, indent=2))  # JSON is YAML
    return path


def nvml_pids() -> dict[str, list[int]]:
    import pynvml

    pynvml.nvmlInit()
    try:
        seen = {}
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
            seen[uuid] = sorted(p.pid for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle))
        return seen
    finally:
        pynvml.nvmlShutdown()


class PidWatch(threading.Thread):
    """Union of compute pids per GPU, polled while the sweep runs."""

    def __init__(self, interval_s: float = 0.5):
        super().__init__(daemon=True)
        self.interval_s, self.stopped = interval_s, threading.Event()
        self.pids: dict[str, set[int]] = {}

    def run(self) -> None:
        while not self.stopped.wait(self.interval_s):
            for uuid, pids in nvml_pids().items():
                self.pids.setdefault(uuid, set()).update(pids)


def worker_pids() -> dict[str, int]:
    """GPU uuid -> pid of the live worker serving it (from the worker's name)."""
    rows = json.loads(farm("workers", "--format", "json"))
    return {r["uuid"]: int(r["worker"].split("@")[0].rsplit("-", 1)[1]) for r in rows
            if r["uuid"].startswith("GPU-") and r.get("worker")}


def isolation(watch: PidWatch, workers: dict[str, int]) -> dict:
    """Each worker's pid on its own GPU and on no other."""
    checks = {}
    for uuid, pid in workers.items():
        on = sorted(u for u, pids in watch.pids.items() if pid in pids)
        checks[uuid] = {"worker_pid": pid, "seen_on": on, "ok": on == [uuid]}
    return {"per_gpu_pids": {u: sorted(p) for u, p in watch.pids.items()}, "workers": checks,
            "ok": bool(checks) and all(c["ok"] for c in checks.values())}


def wait(sweep_ids: list[str], deadline: float, workers: dict) -> dict:
    while True:
        states = {s: json.loads(farm("sweep", "status", s, "--format", "json")) for s in sweep_ids}
        if all(st["finished"] == st["total"] for st in states.values()):
            return states
        if time.time() > deadline:
            print("deadline reached; reporting what finished", file=sys.stderr)
            return states
        if not workers:  # learn the pids once the workers registered
            workers.update(worker_pids())
        time.sleep(3.0)  # each status check is a CLI start; spare the CPUs compiling


def run_sweeps(specs: list[Path], gpus: str, deadline: float, force: bool) -> dict:
    farm("db", "upgrade", check=False)
    subprocess.run([sys.executable, "-m", "workers", "discover", "--register"], check=True, capture_output=True)
    sweep_ids = [farm("sweep", "submit", str(s), *(["--force"] if force else [])).strip().splitlines()[-1]
                 for s in specs]
    log = open(Path(os.environ["FARM_HOME"]) / "workers.log", "ab")
    watch = PidWatch()
    watch.start()
    start = time.time()
    # Our own child; stopped with SIGTERM below, which stops its workers.
    launcher = subprocess.Popen([sys.executable, "-m", "workers", "start", "--device", gpus, "--loglevel", "WARNING"],
                                stdout=log, stderr=subprocess.STDOUT)
    workers: dict[str, int] = {}
    try:
        states = wait(sweep_ids, deadline, workers)
        wall_s = time.time() - start
    finally:
        watch.stopped.set()
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(timeout=60)
    return {"sweep_ids": sweep_ids, "wall_s": round(wall_s, 1), "states": states, "isolation": isolation(watch, workers)}


def telemetry_rows(sweep_ids: list[str]) -> list[dict]:
    """The NVML telemetry stored with every measurement of the sweeps (from the database)."""
    from sqlalchemy import select

    from farm.db.models import Job, Measurement
    from farm.db.session import session_scope

    rows = []
    with session_scope() as session:
        query = select(Measurement, Job).join(Job, Job.id == Measurement.job_id).where(Job.sweep_id.in_(sweep_ids))
        for measurement, job in session.execute(query):
            t = measurement.telemetry or {}
            rows.append({"job_id": job.id, "attempt": measurement.attempt, "available": t.get("available"),
                         "samples": t.get("samples"), "sm_clock_mhz": t.get("sm_clock_mhz"),
                         "temperature_c": t.get("temperature_c"), "power_w": t.get("power_w"),
                         "clocks_event_reasons": t.get("clocks_event_reasons"),
                         "other_processes": t.get("other_processes"), "remeasured": t.get("remeasured"),
                         "flags": measurement.flags})
    return rows


def best_and_fetch(model: Path, gpu_name: str, work: Path) -> dict:
    text = farm("best", str(model), "--device", gpu_name, "--format", "json", check=False)
    best = json.loads(text) if text.strip() else []
    target = work / f"{model.stem}.best.bin"
    message = farm("fetch", str(model), "--device", gpu_name, "-o", str(target), check=False)
    digest = hashlib.sha256(target.read_bytes()).hexdigest() if target.exists() else None
    return {"best": best, "fetched": str(target), "fetch_stdout": message.strip(),
            "sha256": digest, "hash_ok": bool(best) and digest == best[0]["artifact_sha256"]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True, help="JSON result file")
    parser.add_argument("--work", type=Path, default=Path("/tmp/farm-gpu-sweep"))
    parser.add_argument("--gpus", default="gpu", help="worker device selector: gpu, 0, 0,1, uuids")
    parser.add_argument("--models", default="resnetish,encoder")
    parser.add_argument("--precisions", default="fp32,fp16,bf16")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--deadline-s", type=float, default=480.0)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    deadline = time.time() + args.deadline_s
    sys.path.insert(0, str(HERE))
    from sweep_models import export_model

    args.work.mkdir(parents=True, exist_ok=True)
    models = [m for m in args.models.split(",") if m]
    for name in models:
        if not (args.work / f"{name}.onnx").exists():
            export_model(name, args.work)
    precisions, batches = args.precisions.split(","), [int(b) for b in args.batches.split(",")]
    specs = [write_spec(args.work, m, precisions, batches) for m in models]
    devices = json.loads(subprocess.run([sys.executable, "-m", "workers", "discover"], check=True,
                                        capture_output=True, text=True).stdout)
    run = run_sweeps(specs, args.gpus, deadline, args.force)
    gpu_name = next(d["name"] for d in devices if d["kind"] == "gpu")
    result = {"command": " ".join(sys.argv), "gpus": args.gpus, "measure": MEASURE, "build": BUILD,
              "devices": devices, **run,
              "reports": {s: json.loads(farm("report", s, "--format", "json")) for s in run["sweep_ids"]},
              "telemetry": telemetry_rows(run["sweep_ids"]),
              "best": {m: best_and_fetch(args.work / f"{m}.onnx", gpu_name, args.work) for m in models}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps({"wall_s": run["wall_s"], "isolation_ok": run["isolation"]["ok"],
                      "counts": {s: st["counts"] for s, st in run["states"].items()},
                      "hash_ok": {m: b["hash_ok"] for m, b in result["best"].items()},
                      "telemetry_rows": sum(1 for t in result["telemetry"] if t["available"] and t["samples"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
