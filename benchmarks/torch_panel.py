"""The torch backend on a panel of real pretrained models (tests/real_models.py).

For each (model, precision, batch): the worker's own path, in process —
TorchBackend.build (static ONNX import, torch.compile fullgraph), load
(cache artifact, one CUDA graph), infer vs ONNX Runtime fp32 through the
farm's accuracy gate, measure with the CUDA-event harness (host_bound
shares included) — then the kernel-time floor: the sum of the kernel
times of one graph replay, from torch.profiler (CUPTI), over 20 replays.
Writes panel.json (every figure and the raw samples) and panel.md (the
table) after every job, so a run cut short keeps what it measured.

``--shared-cache`` gives the jobs the farm's artifact store (a local store
and SQLite database under FARM_HOME), so every build loads and publishes the
shared Inductor cache (workers/backends/torch/inductor_cache.py).
``--warm-rebuild model:prec:batch`` (with it) rebuilds that configuration
right after its panel job in a new process whose local Inductor and Triton
caches are empty (another worker of the same GPU kind): what it compiles
faster comes through the store only; the rows land in ``warm_rebuilds``.

    python benchmarks/torch_panel.py --out DIR [--models-dir DIR] [--only yolov8n-320] [--deadline-s 540]
        [--shared-cache --warm-rebuild yolov8n-320:fp16:8]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.real_models import PANEL, profile_shapes  # noqa: E402

MEASURE = {"warmup_ms": 200, "duration_ms": 1000, "iterations": 10, "cuda_graph": True}
FLOOR_REPLAYS = 20


def machine() -> dict:
    query = "name,uuid,driver_version,memory.total,clocks.max.sm,clocks.sm,clocks.mem,power.limit,temperature.gpu"
    try:
        smi = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        smi = f"nvidia-smi failed: {exc}"
    import torch

    return {"nvidia_smi": smi, "fields": query, "torch": torch.__version__, "python": platform.python_version(),
            "triton": _version("triton"), "onnx2torch": _version("onnx2torch"), "onnxscript": _version("onnxscript"),
            "onnxruntime": _version("onnxruntime")}


def _version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def kernel_floor_ms(call, replays: int = FLOOR_REPLAYS) -> float | None:
    """Summed GPU kernel time of one call, from torch.profiler."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    call()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(replays):
            call()
        torch.cuda.synchronize()
    total_us = sum(e.time_range.elapsed_us() for e in prof.events()
                   if e.device_type == torch.autograd.DeviceType.CUDA)
    return total_us / 1000.0 / replays if total_us else None


def run_job(model, path: Path, precision: str, batch: int, build_cfg: dict, store=None) -> dict:
    import numpy as np
    import onnxruntime as ort
    import torch

    from farm.accuracy_eval import evaluate
    from farm.model_info import read_model
    from farm.spec import MeasureConfig
    from workers.backends.base import DeviceContext, JobContext
    from workers.backends.torch.backend import TorchBackend
    from workers.backends.torch.config import TorchConfig
    from workers.inputs import make_feeds

    shapes = model.shapes(batch)
    name = torch.cuda.get_device_name(0)
    ctx = JobContext(job_id=f"{model.key}-{precision}-b{batch}", precision=precision, batch_size=batch,
                     shapes=profile_shapes(shapes), model_path=path, model=read_model(path),
                     measure=MeasureConfig(**MEASURE), calibration={},
                     device=DeviceContext(kind="gpu", name=name, device_class=name, index=0),
                     workdir=Path(tempfile.mkdtemp(prefix="panel-")), store=store)
    row = {"model": model.key, "architecture": model.architecture, "precision": precision, "batch": batch,
           "shapes": {k: list(v) for k, v in shapes.items()}}
    backend = TorchBackend(TorchConfig.from_dict(build_cfg))
    built = backend.build(ctx)
    row.update(build_s=round(built.build_s, 2), compile_phases_s=built.info.get("compile_phases_s"),
               artifact_bytes=built.info.get("artifact_bytes"), onnx_nodes=built.info.get("onnx_nodes"),
               host_reads=built.info.get("host_reads"), fullgraph=built.info.get("fullgraph"),
               cache_artifacts=built.info.get("cache_artifacts"),
               cache_artifacts_dropped=built.info.get("cache_artifacts_dropped"),
               inductor_cache=built.info.get("inductor_cache"),
               compile_cache_hits=built.info.get("compile_cache_hits"))
    runner = backend.load(built.artifact, ctx)
    try:
        # Text images for the OCR models (tests/real_models.py says why), else the farm's synthetic inputs.
        feeds = model.sample_feeds(batch) if model.sample_feeds else make_feeds(ctx.model, ctx.run_shapes, seed=0)
        row["inputs"] = "sample" if model.sample_feeds else "synthetic (workers.inputs.make_feeds)"
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        reference = dict(zip(names, session.run(names, feeds)))
        accuracy = evaluate(runner.infer(feeds), reference, precision, {})
        row["accuracy"] = {k: accuracy[k] for k in ("rel_l2_error", "cosine", "passed", "failures")}
        timing = runner.measure(feeds, ctx.measure)
        samples = timing.samples_ms
        p50, p99 = float(np.percentile(samples, 50)), float(np.percentile(samples, 99))
        floor = kernel_floor_ms(runner.call)
        row.update(p50_ms=p50, p99_ms=p99, samples_per_s=batch * 1000.0 / p50, iterations=len(samples),
                   cv_mad=1.4826 * statistics.median(abs(s - p50) for s in samples) / p50,
                   kernel_floor_ms=floor, floor_share_of_p50=(floor / p50) if floor else None,
                   cuda_graph=timing.settings.get("cuda_graph"), cuda_graph_error=timing.settings.get("cuda_graph_error"),
                   host_bound=timing.settings.get("host_bound"), flags=timing.flags,
                   load_s=timing.settings.get("load_s"), telemetry=_clocks(timing.telemetry), samples_ms=samples)
    finally:
        runner.close()
    return row


def _clocks(telemetry: dict) -> dict:
    return {k: v for k, v in (telemetry or {}).items() if not isinstance(v, list) or len(v) < 20}


def table(rows: list[dict]) -> str:
    head = ("| model | prec | batch | build s | p50 ms | p99 ms | samples/s | kernel floor ms | floor/p50 "
            "| GPU-busy share | host share | host_bound | CUDA graph | rel L2 | gate | flags |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['precision']} | {r['batch']} | failed: {r['error']} "
                         "| | | | | | | | | | | | |")
            continue
        hb = r.get("host_bound") or {}
        acc = r.get("accuracy") or {}
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['batch']} | {r['build_s']:.1f} | {r['p50_ms']:.4f} "
            f"| {r['p99_ms']:.4f} | {r['samples_per_s']:.0f} | {_num(r.get('kernel_floor_ms'))} "
            f"| {_num(r.get('floor_share_of_p50'), 2)} | {_num(hb.get('gpu_busy_share'), 3)} "
            f"| {_num(hb.get('host_share'), 3)} | {hb.get('host_bound')} | {r.get('cuda_graph')} "
            f"| {acc.get('rel_l2_error', float('nan')):.2e} | {'pass' if acc.get('passed') else 'FAIL'} "
            f"| {','.join(r.get('flags') or []) or '-'} |")
    return head + "\n".join(lines) + "\n"


def warm_table(rows: list[dict] | None) -> str:
    if not rows:
        return ""
    lines = ["", "Warm rebuilds (new process, empty local Inductor/Triton caches, shared cache from the store):", "",
             "| config | cold build s | warm build s | cold trace+compile s | warm trace+compile s | shared cache "
             "| rel L2 | p50 ms |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['config']} | {r.get('cold_build_s')} | failed: {r['error']} | | | | | |")
            continue
        cache = r.get("inductor_cache") or {}
        sizes = cache.get("sizes") or {}
        shared = f"{cache.get('status')}: " + ", ".join(f"{k} {v['entries']} / {v['bytes'] / 2**20:.1f} MiB"
                                                        for k, v in sizes.items())
        shared += f" (compile: {r.get('compile_cache_hits')})"
        lines.append(f"| {r['config']} | {r.get('cold_build_s')} | {r.get('build_s')} "
                     f"| {(r.get('cold_compile_phases_s') or {}).get('trace_and_compile_s')} "
                     f"| {(r.get('compile_phases_s') or {}).get('trace_and_compile_s')} | {shared} "
                     f"| {(r.get('accuracy') or {}).get('rel_l2_error', float('nan')):.2e} | {_num(r.get('p50_ms'))} |")
    return "\n".join(lines) + "\n"


def _num(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models-dir", type=Path, default=None, help="model files by name (else the wheels)")
    parser.add_argument("--only", default="", help="comma-separated model keys")
    parser.add_argument("--precisions", default="fp16,bf16")
    parser.add_argument("--batches", default="8,1")
    parser.add_argument("--build", default='{"fullgraph": true}', help="torch build config (JSON)")
    parser.add_argument("--deadline-s", type=float, default=1e9)
    parser.add_argument("--shared-cache", action="store_true", help="builds share Inductor caches via the store")
    parser.add_argument("--warm-rebuild", default="", help="model:prec:batch,... rebuilt in a cold process")
    parser.add_argument("--rebuild-one", default="", help=argparse.SUPPRESS)  # the child of --warm-rebuild
    args = parser.parse_args()
    if args.rebuild_one:
        return rebuild_one(args)
    start = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    models = [m for m in PANEL if not args.only or m.key in args.only.split(",")]
    build_cfg = json.loads(args.build)
    result = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "started": _now(),
              "machine": machine(), "build": build_cfg, "measure": MEASURE, "rows": [], "warm_rebuilds": []}
    store = open_shared_store() if args.shared_cache else None
    rebuilds = set(filter(None, args.warm_rebuild.split(",")))
    for batch in [int(b) for b in args.batches.split(",")]:
        for model in models:
            for precision in args.precisions.split(","):
                if time.monotonic() - start > args.deadline_s:
                    result["cut_short"] = f"deadline {args.deadline_s} s reached"
                    break
                path = model.locate(args.models_dir)
                if path is None:
                    result["rows"].append({"model": model.key, "precision": precision, "batch": batch,
                                           "error": "model file not found"})
                    continue
                clock = time.monotonic()
                try:
                    row = run_job(model, path, precision, batch, build_cfg, store)
                except Exception as exc:  # noqa: BLE001 - one failed job must not end the panel
                    row = {"model": model.key, "precision": precision, "batch": batch,
                           "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
                row["job_wall_s"] = round(time.monotonic() - clock, 1)
                result["rows"].append(row)
                print(json.dumps({k: v for k, v in row.items() if k not in ("samples_ms", "telemetry")}),
                      flush=True)
                _write(args.out, result)
                if f"{model.key}:{precision}:{batch}" in rebuilds and "error" not in row:
                    result["warm_rebuilds"].append(warm_rebuild(args, row))
                    _write(args.out, result)
    result["finished"] = _now()
    result["machine_after"] = machine()["nvidia_smi"]
    _write(args.out, result)
    print(table(result["rows"]))
    return 0


def open_shared_store():
    """The farm's store and database under FARM_HOME (SQLite, local store)."""
    from farm.config import ensure_home
    from farm.store import open_store

    ensure_home()
    return open_store()


def warm_rebuild(args, cold: dict) -> dict:
    """The cold row's configuration built again in a new process with empty
    local Inductor/Triton caches and the same FARM_HOME (store + database)."""
    import os

    fresh = Path(tempfile.mkdtemp(prefix="warm-"))
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(fresh / "inductor"), "TRITON_CACHE_DIR": str(fresh / "triton")}
    key = f"{cold['model']}:{cold['precision']}:{cold['batch']}"
    command = [sys.executable, str(Path(__file__).resolve()), "--out", str(fresh), "--build", args.build,
               "--rebuild-one", key] + (["--models-dir", str(args.models_dir)] if args.models_dir else [])
    clock = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    row = json.loads(lines[-1]) if lines else {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    row.update(config=key, process_wall_s=round(time.monotonic() - clock, 1), cold_build_s=cold.get("build_s"),
               cold_compile_phases_s=cold.get("compile_phases_s"))
    print(json.dumps({k: v for k, v in row.items() if k not in ("samples_ms", "telemetry")}), flush=True)
    return row


def rebuild_one(args) -> int:
    key, precision, batch = args.rebuild_one.split(":")
    model = next(m for m in PANEL if m.key == key)
    row = run_job(model, model.locate(args.models_dir), precision, int(batch), json.loads(args.build),
                  open_shared_store())
    print(json.dumps(row, default=str), flush=True)
    return 0


def _write(out: Path, result: dict) -> None:
    (out / "panel.json").write_text(json.dumps(result, indent=1, default=str))
    text = (f"# torch backend, real-model panel\n\nCommand: `{result['command']}`\n\nStarted {result['started']}; "
            f"machine: {result['machine']['nvidia_smi']} ({result['machine']['fields']}); torch "
            f"{result['machine']['torch']}, onnx2torch {result['machine']['onnx2torch']}, onnxscript "
            f"{result['machine']['onnxscript']}\n\nBuild config: `{json.dumps(result['build'])}`; measure: "
            f"`{json.dumps(result['measure'])}`\n\n" + table(result["rows"]) + warm_table(result.get("warm_rebuilds")))
    (out / "panel.md").write_text(text)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


if __name__ == "__main__":
    raise SystemExit(main())
