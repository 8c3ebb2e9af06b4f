"""Issue 22 on a GPU: reduced precision judged by task metrics on realistic inputs.

Two real pretrained models from the rapidocr_onnxruntime wheel, torch
backend, fp32 / fp16 / bf16 at batch 4 (the torch backend has no int8: its
capabilities list fp32, fp16, bf16; the TensorRT family's int8 needs
TensorRT, not installable here), ``data:`` of 32 rendered rows, and a task
metric per output declared in the spec:

- PP-OCRv4 det: IoU of the probability map thresholded at 0.3 against the
  fp32 ONNX Runtime reference (and the default rel. L2 reported beside it);
- PP-OCRv4 rec: CTC argmax-sequence agreement and edit distance.

Every evaluation row is scored (accuracy over all 32 samples, mean and
interval per metric, per-sample values stored), one pinned worker on GPU 0.
Writes ``reduced_precision.json`` (every figure, card, clocks) and
``reduced_precision.md`` to --out. ``--cpu-dry-run`` runs the same plumbing
with onnxruntime on the CPU (fp32 and int8 with a disjoint calibration split).

    python benchmarks/gpu_reduced_precision.py --out DIR [--models-dir DIR] [--deadline-s 170]
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

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gpu_acceptance as ga  # noqa: E402  (farm(), text_lines(), locate(), sweep_states())

ROWS = 32
MODELS = {
    # key: (file, input, sample shape, metrics)
    "ppocr-det": ("ch_PP-OCRv4_det_infer.onnx", "x", (3, 320, 320),
                  [{"output": "sigmoid_0.tmp_0", "metric": "iou", "threshold": 0.3, "min": 0.9}]),
    "ppocr-rec": ("ch_PP-OCRv4_rec_infer.onnx", "x", (3, 48, 320),
                  [{"output": "softmax_11.tmp_0", "metric": "sequence", "min": 0.9},
                   {"output": "softmax_11.tmp_0", "metric": "edit_distance", "max": 0.05}]),
}


def write_spec(work: Path, key: str, model: Path, backend: str, devices: str, precisions: list[str]) -> Path:
    _, name, sample, metrics = MODELS[key]
    np.savez(work / f"{key}.npz", **{name: ga.text_lines(ROWS, sample[1], sample[2], seed=22)})
    shape = [4, *sample]
    spec = {"name": f"{key}-reduced", "model": str(model), "backends": [backend], "precisions": precisions,
            "batch_sizes": [4], "devices": devices, "data": f"{key}.npz",
            "profiles": [{"name": "p", "inputs": {name: {"min": shape, "opt": shape, "max": shape}}}],
            "accuracy": {"metrics": metrics}, "measure": {"duration_ms": 1000}}
    path = work / f"{key}.yaml"
    path.write_text(json.dumps(spec, indent=2))
    return path


def rows(sweep_ids: dict[str, str]) -> list[dict]:
    from sqlalchemy import select

    from farm.db import Device, Job, Measurement, session_scope

    out = []
    with session_scope() as session:
        for key, sweep_id in sweep_ids.items():
            for job in session.scalars(select(Job).where(Job.sweep_id == sweep_id).order_by(Job.seq)):
                m = session.scalar(select(Measurement).where(Measurement.job_id == job.id)
                                   .order_by(Measurement.attempt.desc()).limit(1))
                device = session.get(Device, job.device_id) if job.device_id else None
                accuracy = (m.accuracy or {}) if m else {}
                metrics = [dict(x, output=name) for name, rec in (accuracy.get("per_output") or {}).items()
                           for x in rec.get("metrics", [])]
                for x in metrics:
                    x.pop("per_sample", None)
                samples = np.asarray(m.samples_ms or [], dtype=float) if m else np.asarray([])
                out.append({"model": key, "job_id": job.id, "status": job.status, "error": (job.error or "")[-300:],
                            "precision": job.precision, "batch": job.batch_size,
                            "card": device.name if device else None,
                            "p50_ms": float(np.median(samples)) if samples.size else None,
                            "accuracy_status": m.accuracy_status if m else None,
                            "accuracy_inputs": m.accuracy_inputs if m else None,
                            "rel_l2": m.rel_l2_error if m else None, "metrics": metrics,
                            "failures": accuracy.get("failures"), "flags": list(m.flags or []) if m else [],
                            "sm_clock_mhz": ((m.telemetry or {}).get("sm_clock_mhz") if m else None)})
    return out


def markdown(result: dict) -> str:
    cards = sorted({r["card"] for r in result["jobs"] if r["card"]})
    lines = [f"# Issue 22 on {', '.join(cards) or 'no device'}: reduced precision by task metrics", "",
             f"Command: `{result['command']}`", "", f"Machine: {result['machine']}", "",
             f"Data: {ROWS} rendered rows per model (all evaluated; no int8 in the sweep, so no calibration rows); "
             f"backend {result['backend']}; wall {result['wall_s']} s.", "",
             "| model | card | prec | status | p50 ms | acc | inputs | rel L2 (pooled) | task metric: value [95 % CI] |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["jobs"]:
        metric = "; ".join(f"{m['metric']} {m['statistic']} {m['value']:.4f} [{m['ci'][0]:.4f}, {m['ci'][1]:.4f}]"
                           f" ({'pass' if m['passed'] else 'FAIL'})" for m in r["metrics"]) or "-"
        p50 = f"{r['p50_ms']:.4f}" if r["p50_ms"] is not None else "-"
        rel = f"{r['rel_l2']:.4g}" if r["rel_l2"] is not None else "-"
        lines.append(f"| {r['model']} | {r['card'] or '-'} | {r['precision']} | {r['status']} | {p50} | "
                     f"{r['accuracy_status']} | {r['accuracy_inputs'] or '-'} | {rel} | {metric} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models-dir", type=Path)
    parser.add_argument("--deadline-s", type=float, default=170.0)
    parser.add_argument("--cpu-dry-run", action="store_true")
    args = parser.parse_args()
    backend, devices, worker_device, precisions = "torch", "gpu", "0", ["fp32", "fp16", "bf16"]
    if args.cpu_dry_run:
        backend, devices, worker_device, precisions = "onnxruntime", "cpu", "cpu", ["fp32", "int8"]
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("FARM_HOME", "/tmp/farm-i22")) / "reduced"
    work.mkdir(parents=True, exist_ok=True)
    ga.REAL.update({k: (v[0], v[1], v[2]) for k, v in MODELS.items()})
    start = time.time()
    specs = {}
    for key in MODELS:
        model = work / MODELS[key][0]
        model.write_bytes(ga.locate(key, args.models_dir).read_bytes())
        specs[key] = write_spec(work, key, model, backend, devices, precisions)
    ga.farm("db", "upgrade", check=False)
    if not args.cpu_dry_run:
        subprocess.run([sys.executable, "-m", "workers", "discover", "--register"], check=True, capture_output=True)
    os.chdir(work)
    sweep_ids = {k: ga.farm("sweep", "submit", str(p), "--force").stdout.strip().splitlines()[-1]
                 for k, p in specs.items()}
    log = open(work / "workers.log", "ab")
    worker = subprocess.Popen([sys.executable, "-m", "workers", "start", "--device", worker_device, "--loglevel",
                               "WARNING"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = start + args.deadline_s
        while time.time() < deadline:
            states = ga.sweep_states(sweep_ids)
            if all(s["finished"] == s["total"] for s in states.values()):
                break
            time.sleep(2.0)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
    machine = subprocess.run("nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader",
                             shell=True, capture_output=True, text=True).stdout.strip() or os.uname().nodename
    result = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine,
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "backend": backend,
              "wall_s": round(time.time() - start, 1), "sweep_ids": sweep_ids, "jobs": rows(sweep_ids)}
    (args.out / "reduced_precision.json").write_text(json.dumps(result, indent=1, default=str))
    (args.out / "reduced_precision.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
