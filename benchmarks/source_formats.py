"""A PyTorch program measured by the torch backend two ways, side by side:
natively from its torch.export ``.pt2`` (the user's own program compiled)
and through the ONNX the farm converts it to (torch.onnx.export dynamo ->
onnx2torch static import -> the same compile). Issue 28.

Models are built from code with random weights (seeded), nothing is
downloaded: a torchvision-style ResNet-18 (BasicBlocks, BatchNorm) on
3x224x224 and a 4-layer transformer encoder (d_model 256, 8 heads, token
embedding, sequence 128). Each is exported here, on the GPU machine, with a
dynamic batch (a .pt2 written by another torch version may not load), then
converted by the farm's own path (farm.sources.open_model: the converter
subprocess, its parity check on the program's example inputs).

Per (model, route, precision, batch): TorchBackend.build (wall time), load,
accuracy against eager PyTorch fp32 (the original nn.Module, TF32 off) through
the farm's gate (farm.accuracy_eval.evaluate), the CUDA-event harness (p50, p99)
and the kernel-time floor (torch.profiler, as benchmarks/torch_panel.py).
The two routes of one configuration run back to back, native first then
ONNX, and the pair is repeated in the other order for the second precision,
so a clock drift does not favour one route.

    python benchmarks/source_formats.py --out DIR [--deadline-s 170] [--precisions fp16,bf16] [--batch 8]
    python benchmarks/source_formats.py --out DIR --cpu-check   # export + convert + parity only (no GPU)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

MEASURE = {"warmup_ms": 200, "duration_ms": 1000, "iterations": 10, "cuda_graph": True}
BUILD = {"fullgraph": True, "mode": "default"}  # a quick compile: max-autotune is for finalists (issue 25)


def resnet18():
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + self.down(x))

    class ResNet18(nn.Module):
        def __init__(self, classes=1000):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                      nn.MaxPool2d(3, 2, 1))
            layers, cin = [], 64
            for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
                cin = cout
            self.layers = nn.Sequential(*layers)
            self.fc = nn.Linear(512, classes)

        def forward(self, images):
            x = self.layers(self.stem(images))
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    model = ResNet18()
    with torch.no_grad():  # BatchNorm statistics that are not the identity, so the folding is exercised
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


def encoder():
    import torch
    from torch import nn

    class Encoder(nn.Module):
        def __init__(self, vocab=8000, dim=256, heads=8, layers=4, seq=128):
            super().__init__()
            self.embed = nn.Embedding(vocab, dim)
            self.position = nn.Parameter(torch.randn(1, seq, dim) * 0.02)
            layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=0.0, batch_first=True,
                                               norm_first=True, activation="gelu")
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(dim)

        def forward(self, tokens):
            return self.norm(self.encoder(self.embed(tokens) + self.position))

    return Encoder()


MODELS = {
    "resnet18": (resnet18, lambda torch, b: (torch.randn(b, 3, 224, 224),), "images"),
    "encoder4x256": (encoder, lambda torch, b: (torch.randint(0, 8000, (b, 128)),), "tokens"),
}


def export(key: str, folder: Path):
    """(eager module, .pt2 path): exported on the CPU, as users usually do, batch dynamic."""
    import torch

    torch.manual_seed(0)
    build, example, _ = MODELS[key]
    module = build().eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    with torch.no_grad():
        program = torch.export.export(module, example(torch, 2), dynamic_shapes=({0: batch},))
    path = folder / f"{key}.pt2"
    torch.export.save(program, str(path))
    return module, path


def eager_reference(module, feeds: dict) -> list:
    """The original module in fp32 on the GPU, TF32 off: what 'accuracy vs eager PyTorch' compares with."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device_module = module.to("cuda").float()
    with torch.no_grad():
        out = device_module(*(torch.from_numpy(v).to("cuda") for v in feeds.values()))
    module.to("cpu")
    return [out.float().cpu().numpy()]


def run_route(route: str, key: str, model_info, path: Path, precision: str, batch: int, eager, store) -> dict:
    import numpy as np
    import torch

    from farm.accuracy_eval import evaluate
    from farm.spec import MeasureConfig
    from torch_panel import _clocks, kernel_floor_ms
    from workers.backends.base import DeviceContext, JobContext
    from workers.backends.torch.backend import TorchBackend
    from workers.backends.torch.config import TorchConfig
    from workers.inputs import make_feeds

    name = torch.cuda.get_device_name(0)
    shape = [batch] + [d for d in model_info.inputs[0].dims[1:]]
    shapes = {model_info.inputs[0].name: {"min": shape, "opt": shape, "max": shape}}
    ctx = JobContext(job_id=f"{key}-{route}-{precision}-b{batch}", precision=precision, batch_size=batch,
                     shapes=shapes, model_path=path, model=model_info, measure=MeasureConfig(**MEASURE),
                     calibration={}, device=DeviceContext(kind="gpu", name=name, device_class=name, index=0),
                     workdir=Path(tempfile.mkdtemp(prefix=f"formats-{route}-")), store=store)
    row = {"model": key, "route": route, "precision": precision, "batch": batch, "file": path.name}
    backend = TorchBackend(TorchConfig.from_dict(BUILD))
    clock = time.perf_counter()
    built = backend.build(ctx)
    row.update(build_s=round(built.build_s, 2), build_wall_s=round(time.perf_counter() - clock, 2),
               source_format=built.info.get("source_format"), compile_phases_s=built.info.get("compile_phases_s"),
               onnx_nodes=built.info.get("onnx_nodes"), host_reads=built.info.get("host_reads"),
               moved_to_device=built.info.get("moved_to_device"))
    runner = backend.load(built.artifact, ctx)
    try:
        feeds = make_feeds(ctx.model, ctx.run_shapes, seed=0)
        reference = dict(zip(model_info.outputs, eager(feeds)))
        accuracy = evaluate(runner.infer(feeds), reference, precision, {})
        row["accuracy_vs_eager_fp32"] = {k: accuracy.get(k) for k in ("max_abs_error", "rel_l2_error", "cosine",
                                                                      "passed", "failures")}
        timing = runner.measure(feeds, ctx.measure)
        samples = timing.samples_ms
        p50, p99 = float(np.percentile(samples, 50)), float(np.percentile(samples, 99))
        floor = kernel_floor_ms(runner.call)
        row.update(p50_ms=p50, p99_ms=p99, samples_per_s=batch * 1000.0 / p50, iterations=len(samples),
                   cv_mad=1.4826 * statistics.median(abs(s - p50) for s in samples) / p50,
                   kernel_floor_ms=floor, floor_share_of_p50=(floor / p50) if floor else None,
                   cuda_graph=timing.settings.get("cuda_graph"), flags=timing.flags,
                   telemetry=_clocks(timing.telemetry), samples_ms=samples)
    finally:
        runner.close()
        del runner
        torch.cuda.empty_cache()
    return row


def convert(path: Path, key: str) -> tuple:
    """The farm's own conversion (farm/sources.py): ModelInfo of the ONNX, with its record."""
    from farm.sources import open_model

    model = open_model(path)
    return model, model.path


def table(rows: list[dict]) -> str:
    head = ("| model | route | prec | batch | build s | p50 ms | p99 ms | samples/s | kernel floor ms | "
            "floor/p50 | rel L2 vs eager fp32 | cosine | gate |\n|" + "---|" * 13)
    lines = [head]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r.get('route')} | {r.get('precision')} | {r.get('batch')} | "
                         f"error: {r['error'][:160]} |" + " |" * 8)
            continue
        acc = r["accuracy_vs_eager_fp32"]
        lines.append(f"| {r['model']} | {r['route']} | {r['precision']} | {r['batch']} | {r['build_s']:.1f} | "
                     f"{r['p50_ms']:.4f} | {r['p99_ms']:.4f} | {r['samples_per_s']:.0f} | "
                     f"{_num(r.get('kernel_floor_ms'))} | {_num(r.get('floor_share_of_p50'), 2)} | "
                     f"{_num(acc.get('rel_l2_error'), 5)} | {_num(acc.get('cosine'), 6)} | "
                     f"{'pass' if acc.get('passed') else 'FAIL'} |")
    return "\n".join(lines)


def _num(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--precisions", default="fp16")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--only", default="", help="comma-separated model keys")
    parser.add_argument("--deadline-s", type=float, default=150, help="no new job after this")
    parser.add_argument("--cpu-check", action="store_true", help="export, convert and parity only")
    args = parser.parse_args()
    start = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="source-formats-"))
    os.environ.setdefault("FARM_HOME", str(work / "farm-home"))
    result: dict = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "started": _now(),
              "build": BUILD, "measure": MEASURE, "conversions": {}, "rows": []}
    if not args.cpu_check:
        from torch_panel import machine

        result["machine"] = machine()
    keys = [k for k in MODELS if not args.only or k in args.only.split(",")]
    for key in keys:
        clock = time.perf_counter()
        module, pt2 = export(key, work)
        export_s = time.perf_counter() - clock
        clock = time.perf_counter()
        try:
            info, onnx_path = convert(pt2, key)
        except Exception as exc:  # noqa: BLE001 - the record says what failed; the other model still runs
            result["conversions"][key] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
            _write(args.out, result)
            continue
        source = info.source
        result["conversions"][key] = {"export_s": round(export_s, 2), "convert_wall_s": round(time.perf_counter() - clock, 2),
                                      **{k: source.get(k) for k in ("converter", "versions", "opset", "convert_s",
                                                                      "inputs", "parity")},
                                      "onnx_bytes": onnx_path.stat().st_size, "pt2_bytes": pt2.stat().st_size}
        print(json.dumps({key: result["conversions"][key]["parity"]}), flush=True)
        _write(args.out, result)
        if args.cpu_check:
            continue
        eager = lambda feeds, m=module: eager_reference(m, feeds)  # noqa: E731
        for index, precision in enumerate(args.precisions.split(",")):
            routes = [("native .pt2", pt2), ("via ONNX", onnx_path)]
            for route, path in (routes if index % 2 == 0 else routes[::-1]):
                if time.monotonic() - start > args.deadline_s:
                    result["cut_short"] = f"deadline {args.deadline_s} s reached"
                    break
                clock = time.monotonic()
                try:
                    row = run_route(route, key, info, path, precision, args.batch, eager, None)
                except Exception as exc:  # noqa: BLE001 - one failed route must not end the run
                    row = {"model": key, "route": route, "precision": precision, "batch": args.batch,
                           "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
                row["job_wall_s"] = round(time.monotonic() - clock, 1)
                result["rows"].append(row)
                print(json.dumps({k: v for k, v in row.items() if k not in ("samples_ms", "telemetry")}), flush=True)
                _write(args.out, result)
    result["finished"] = _now()
    _write(args.out, result)
    print(table(result["rows"]))
    return 0


def _write(out: Path, result: dict) -> None:
    (out / "source_formats.json").write_text(json.dumps(result, indent=1, default=str))
    (out / "source_formats.md").write_text(table(result["rows"]) + "\n")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


if __name__ == "__main__":
    sys.exit(main())
