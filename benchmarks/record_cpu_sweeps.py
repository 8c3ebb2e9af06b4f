"""Record full CPU sweeps of real pretrained models for the search replay
benchmark (benchmarks/search_replay.py).

Each workload (a model at one input shape) is swept over its whole space
through the farm itself (``farm run``, ONNX Runtime on this machine's CPU):
precision x batch size x two build knobs (intra-op threads, graph
optimisation level). Every job's raw latency samples, accuracy verdict,
memory and build time are exported to one JSON file per workload under
benchmarks/results/raw/search_sweeps/.

The models are PP-OCR's detector, recogniser and direction classifier as
shipped (pretrained) in the rapidocr_onnxruntime wheel.

    python benchmarks/record_cpu_sweeps.py [--only NAME ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "raw" / "search_sweeps"
MEASURE = {"warmup_ms": 50, "duration_ms": 300, "iterations": 10, "max_remeasure": 0}
KNOBS = {"intra_op_num_threads": [1, 2], "graph_optimization_level": ["basic", "all"]}


def _models() -> Path:
    import rapidocr_onnxruntime

    return Path(rapidocr_onnxruntime.__file__).parent / "models"


WORKLOADS = {  # name -> (model file, C x H x W, batch sizes)
    "cls_48x192": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", (3, 48, 192), [1, 2, 4, 8, 16, 32]),
    "cls_48x384": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", (3, 48, 384), [1, 2, 4, 8, 16, 32]),
    "rec_48x160": ("ch_PP-OCRv4_rec_infer.onnx", (3, 48, 160), [1, 2, 4, 8, 16]),
    "rec_48x320": ("ch_PP-OCRv4_rec_infer.onnx", (3, 48, 320), [1, 2, 4, 8, 16]),
    "rec_48x480": ("ch_PP-OCRv4_rec_infer.onnx", (3, 48, 480), [1, 2, 4, 8]),
    "det_128": ("ch_PP-OCRv4_det_infer.onnx", (3, 128, 128), [1, 2, 4, 8]),
    "det_192": ("ch_PP-OCRv4_det_infer.onnx", (3, 192, 192), [1, 2, 4, 8]),
    "det_256": ("ch_PP-OCRv4_det_infer.onnx", (3, 256, 256), [1, 2, 4]),
    "cls_48x96": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", (3, 48, 96), [1, 2, 4, 8, 16, 32]),
    "det_96": ("ch_PP-OCRv4_det_infer.onnx", (3, 96, 96), [1, 2, 4, 8]),
}


def _spec(name: str, model: Path, chw, batches, knobs: dict) -> dict:
    top = max(batches)
    return {"name": name, "model": str(model), "backends": ["onnxruntime"], "precisions": ["fp32", "int8"],
            "batch_sizes": batches, "devices": "cpu", "measure": MEASURE,
            "profiles": [{"name": f"s{chw[1]}x{chw[2]}",
                          "inputs": {"x": {"min": [1, *chw], "opt": [top, *chw], "max": [top, *chw]}}}],
            "build": {"onnxruntime": knobs}}


def _export(home: Path) -> list[dict]:
    env = {**os.environ, "FARM_HOME": str(home)}
    code = ("import json,sys\nfrom farm.db import Job, Measurement, session_scope\nfrom sqlalchemy import select\n"
            "rows=[]\nwith session_scope() as s:\n for j in s.scalars(select(Job).order_by(Job.seq)):\n"
            "  m=s.scalar(select(Measurement).where(Measurement.job_id==(j.result_job_id or j.id))"
            ".order_by(Measurement.attempt.desc()).limit(1))\n"
            "  rows.append({'job_id':j.id,'status':j.status,'backend':j.backend,'precision':j.precision,"
            "'batch_size':j.batch_size,'profile':j.profile,'device_class':j.device_class,"
            "'build':j.config.get('build',{}),'error':j.error,"
            "'samples_ms':m.samples_ms if m else [],'memory_mb':m.memory_mb if m else None,"
            "'build_s':m.build_s if m else None,'artifact_size':m.artifact_size if m else None,"
            "'accuracy_pass':m.accuracy_pass if m else None,'rel_l2_error':m.rel_l2_error if m else None,"
            "'flags':m.flags if m else [],'telemetry_remeasured':(m.telemetry or {}).get('remeasured') if m else None})\n"
            "json.dump(rows,sys.stdout)\n")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def record(name: str, out: Path = OUT) -> Path:
    model_file, chw, batches = WORKLOADS[name]
    model = _models() / model_file
    started, load_before = time.time(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix=f"rec-{name}-") as tmp:
        home = Path(tmp) / "farm"
        env = {**os.environ, "FARM_HOME": str(home)}
        for values in itertools.product(*KNOBS.values()):
            knobs = dict(zip(KNOBS, values))
            spec_path = Path(tmp) / "spec.yaml"
            spec_path.write_text(yaml.safe_dump(_spec(name, model, chw, batches, knobs)))
            subprocess.run([sys.executable, "-m", "farm", "run", str(spec_path), "--format", "json"], env=env,
                           check=True, stdout=subprocess.DEVNULL)
        rows = _export(home)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"cpu_{name}.json"
    path.write_text(json.dumps({
        "name": f"cpu_{name}", "model": model_file, "input_chw": list(chw), "device": "cpu",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "note": "2 cores shared with other work",
                    "load_avg_before": list(load_before), "load_avg_after": list(os.getloadavg()),
                    "nice": os.nice(0)},
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "wall_s": time.time() - started,
        "command": f"python benchmarks/record_cpu_sweeps.py --only {name}",
        "axes": {"precision": ["fp32", "int8"], "batch_size": batches, **KNOBS}, "measure": MEASURE,
        "rows": rows}, indent=1))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", default=list(WORKLOADS))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    for name in args.only:
        print(record(name, args.out), flush=True)


if __name__ == "__main__":
    main()
