"""Multi-stream throughput and the per-layer table for the torch backend, on a GPU.

Builds one torch job from a real model (default: PP-OCRv4's text detector,
the ONNX file shipped in the rapidocr_onnxruntime wheel, through onnx2torch),
measures it with ``measure.streams`` = 1, 2 and 4 (one compiled replica and
CUDA graph per stream, lanes of workers.timing.cuda), then runs the per-layer
profile (torch.profiler kernel table, workers.backends.torch.profile).
Writes the raw JSON and a Markdown results file stating the machine, the
date and this command.

    python benchmarks/torch_streams_profile.py --model ch_PP-OCRv4_det_infer.onnx --shape 1x3x640x640 \
        --precision fp16 --out-json raw.json --out-md results.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def job_context(model_path: Path, precision: str, shape: list[int], measure, workdir: Path):
    from farm.model_info import read_model
    from workers.backends.base import DeviceContext, JobContext

    info = read_model(model_path)
    shapes = {info.inputs[0].name: {"min": shape, "opt": shape, "max": shape}}
    device = DeviceContext(kind="gpu", name="gpu", device_class="gpu", index=0)
    return JobContext(job_id="streams-profile", precision=precision, batch_size=shape[0], shapes=shapes,
                      model_path=model_path, model=info, measure=measure, calibration={}, device=device,
                      workdir=workdir, store=None)


def machine() -> str:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name,uuid,driver_version,memory.total",
                               "--format=csv,noheader"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"nvidia-smi failed: {exc}"


def markdown(result: dict) -> str:
    lines = [f"# torch multi-stream throughput and per-layer profile ({result['date'][:10]})", "",
             f"- Machine: {result['machine']}; torch {result['torch']}",
             f"- Date (UTC): {result['date']}",
             f"- Command: `{result['command']}`",
             f"- Model: {result['model']} at input {result['shape']}, {result['precision']}, "
             f"torch.compile mode {result['mode']!r}, CUDA graph per stream: {result['cuda_graph']}",
             f"- Each run: warm-up {result['measure']['warmup_ms']} ms, at least {result['measure']['duration_ms']} ms "
             f"and {result['measure']['iterations']} iterations per stream; sync {result['measure']['sync']}",
             "", "## Aggregate throughput", "",
             "| streams | aggregate throughput (samples/s) | vs 1 stream | per-stream p50 latency (ms) | iterations |",
             "| --- | --- | --- | --- | --- |"]
    base = result["streams"][0]["aggregate_throughput"]
    for run in result["streams"]:
        p50s = ", ".join(f"{s['p50_ms']:.3f}" for s in run["per_stream"])
        lines.append(f"| {run['streams']} | {run['aggregate_throughput']:.1f} | {run['aggregate_throughput'] / base:.2f}x "
                     f"| {p50s} | {run['iterations']} |")
    profile = result["layer_profile"]
    lines += ["", f"## Per-layer table (top 15 of {len(profile['layers'])} kernels; {profile['source']}, "
              f"{profile['iterations']} iterations, total {profile['total_median_ms']:.3f} ms)", "",
              "| kernel | type | median ms | share |", "| --- | --- | --- | --- |"]
    for row in profile["layers"][:15]:
        name = row["name"] if len(row["name"]) <= 90 else row["name"][:87] + "..."
        lines.append(f"| `{name}` | {row.get('type', '')} | {row['median_ms']:.4f} | {row['share'] * 100:.1f} % |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--shape", default="1x3x640x640")
    parser.add_argument("--precision", default="fp16")
    parser.add_argument("--streams", default="1,2,4")
    parser.add_argument("--duration-ms", type=float, default=2000.0)
    parser.add_argument("--mode", default="default", help="torch.compile mode (default: quick compile)")
    parser.add_argument("--out-json", type=Path, required=True)
    parser.add_argument("--out-md", type=Path, required=True)
    args = parser.parse_args()
    import torch

    from farm.spec import MeasureConfig
    from workers.backends import load_backend

    shape = [int(d) for d in args.shape.split("x")]
    base = MeasureConfig(warmup_ms=300, duration_ms=args.duration_ms, iterations=50, cuda_graph=True, sync="spin",
                         end_to_end=False)
    ctx = job_context(args.model, args.precision, shape, base, Path(tempfile.mkdtemp()))
    backend = load_backend("torch", {"mode": args.mode})
    start = time.perf_counter()
    built = backend.build(ctx)
    runner = backend.load(built.artifact, ctx)
    feeds = ctx.measurement_feeds()
    runs = []
    for n in [int(s) for s in args.streams.split(",")]:
        timing = runner.measure(feeds, MeasureConfig(**{**base.__dict__, "streams": n}))
        settings = timing.settings
        throughput = timing.throughput if timing.throughput is not None else (
            shape[0] * 1000.0 * len(timing.samples_ms) / settings["measured_wall_ms"])
        per_stream = settings.get("per_stream") or [
            {"stream": 0, "iterations": len(timing.samples_ms),
             "p50_ms": sorted(timing.samples_ms)[len(timing.samples_ms) // 2]}]
        runs.append({"streams": n, "aggregate_throughput": throughput, "per_stream": per_stream,
                     "iterations": len(timing.samples_ms), "settings": settings})
        print(f"streams={n}: {throughput:.1f} samples/s", flush=True)
    profile = runner.profile_layers(feeds, base)
    runner.close()
    result = {"command": " ".join(["python", *sys.argv]), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": machine(), "torch": torch.__version__, "model": args.model.name, "shape": args.shape,
              "precision": args.precision, "mode": args.mode, "cuda_graph": runs[0]["settings"].get("cuda_graph"),
              "measure": base.__dict__, "build_s": built.build_s, "total_s": time.perf_counter() - start,
              "streams": runs, "layer_profile": profile}
    args.out_json.parent.mkdir(parents=True, exist_ok=True)
    args.out_json.write_text(json.dumps(result, indent=1, default=str))
    args.out_md.write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
