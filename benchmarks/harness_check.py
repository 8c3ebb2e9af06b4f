"""Check the CUDA-event harness against triton.testing.do_bench on the same
compiled callable, and its run-to-run spread.

Builds one torch job (torch backend, the default compile unless --inductor, one CUDA graph)
from a generated model, then times the compiled call (1) with the farm's
harness (CUDA events, L2 flushed before each iteration, compute time only)
and (2) with ``triton.testing.do_bench`` (CUDA events, L2 flushed by zeroing
a 256 MB buffer before each call, median). Repeats the harness 5 times for
the spread of its median. Writes one JSON file.

    python benchmarks/harness_check.py --out check.json --model resnetish --precision bf16 --batch 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPEATS = 5


def job_context(model_path: Path, precision: str, batch: int, measure, workdir: Path):
    from farm.model_info import read_model
    from workers.backends.base import DeviceContext, JobContext

    info = read_model(model_path)
    dims = [batch] + [d for d in info.inputs[0].dims[1:]]
    shapes = {info.inputs[0].name: {"min": dims, "opt": dims, "max": dims}}
    device = DeviceContext(kind="gpu", name="gpu", device_class="gpu", index=0)
    return JobContext(job_id="harness-check", precision=precision, batch_size=batch, shapes=shapes,
                      model_path=model_path, model=info, measure=measure, calibration={}, device=device,
                      workdir=workdir, store=None)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="resnetish")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--work", type=Path, default=Path("/tmp/farm-gpu-sweep"))
    parser.add_argument("--inductor", type=json.loads, default=None,
                        help='torch backend "inductor" overrides as JSON, e.g. \'{"max_autotune_gemm_backends": "ATEN"}\'')
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import triton
    from triton.testing import do_bench
    from sweep_models import export_model

    from farm.spec import MeasureConfig
    from workers.backends import load_backend
    from workers.inputs import make_feeds

    model_path = args.work / f"{args.model}.onnx"
    if not model_path.exists():
        export_model(args.model, args.work)
    harness_cfg = MeasureConfig(warmup_ms=200, duration_ms=1000, iterations=10, l2_flush=True, end_to_end=False)
    ctx = job_context(model_path, args.precision, args.batch, harness_cfg, Path(tempfile.mkdtemp()))
    backend = load_backend("torch", {"inductor": args.inductor} if args.inductor else {})
    built = backend.build(ctx)
    runner = backend.load(built.artifact, ctx)
    feeds = make_feeds(ctx.model, ctx.run_shapes)
    runs = [runner.measure(feeds, harness_cfg) for _ in range(REPEATS)]
    medians = [statistics.median(r.samples_ms) for r in runs]
    bench_ms = do_bench(runner.call, warmup=200, rep=1000, return_mode="median")
    runner.close()
    ours = statistics.median(medians)
    cv = statistics.stdev(medians) / statistics.mean(medians)
    result = {
        "command": " ".join(sys.argv), "inductor": args.inductor, "model": args.model, "precision": args.precision, "batch": args.batch,
        "build_s": built.build_s, "build_info": built.info,
        "harness": {"settings": runs[0].settings, "medians_ms": medians, "median_of_medians_ms": ours,
                    "run_to_run_cv": cv, "samples_per_run": [len(r.samples_ms) for r in runs],
                    "telemetry": runs[0].telemetry, "flags": [r.flags for r in runs],
                    "telemetry_samples_per_run": [r.telemetry.get("samples") for r in runs]},
        "do_bench": {"median_ms": bench_ms, "triton": triton.__version__,
                     "settings": "triton.testing.do_bench(fn, warmup=200, rep=1000, return_mode='median'): "
                                 "CUDA events per call, L2 cleared by zeroing a 256 MB buffer before each call"},
        "relative_difference": (ours - bench_ms) / bench_ms,
    }
    result["pass"] = abs(result["relative_difference"]) <= 0.03 and cv < 0.02
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps({k: result[k] for k in ("relative_difference", "pass")} |
                     {"harness_ms": ours, "do_bench_ms": bench_ms, "cv": cv}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
