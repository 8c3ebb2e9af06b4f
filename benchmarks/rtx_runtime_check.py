"""Does TensorRT-RTX run on this GPU? Build an engine for a small real model
through the farm's TensorRT-RTX backend, then load it and run it once, and
record what happened.

Run on a GPU machine with the RTX wheels and cuda-python installed:

    python benchmarks/rtx_runtime_check.py [--model examples/models/ppocr_det.onnx]

Expected on an H100/H200 (compute capability 9.0): the build succeeds (builds
need no GPU), loading ends in BackendUnsupported carrying the runtime's own
message (``reason``; ``inspector.reason`` holds the message of the
deserialization tried at build time for the engine inspector).
On 8.0/8.6/8.9/12.x the engine runs and its output is compared with ONNX
Runtime's fp32 result. The outcome goes to
benchmarks/results/rtx_runtime_check-<host>-<date>.json with the machine,
the date and the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHAPES = {"x": {"min": [1, 3, 64, 64], "opt": [1, 3, 96, 96], "max": [1, 3, 128, 128]}}


def gpu_device():
    """The first GPU as the farm's workers see it, or the CPU if none."""
    from workers.backends.base import DeviceContext
    from workers.discovery import cpu_device, gpu_devices

    gpus = gpu_devices()
    found = gpus[0] if gpus else cpu_device()
    return DeviceContext(kind=found.kind, name=found.name, device_class=found.device_class,
                         index=0 if found.kind == "gpu" else None, compute_capability=found.compute_capability,
                         uuid=found.uuid), found.to_json()


def check(model: Path, precision: str, knobs: dict, workdir: Path) -> dict:
    from farm.errors import BackendUnsupported
    from farm.model_info import read_model
    from farm.spec import MeasureConfig
    from farm.store import open_store
    from workers.backends import load_backend
    from workers.backends.base import JobContext

    device, found = gpu_device()
    ctx = JobContext(job_id="rtx-runtime-check", precision=precision, batch_size=1, shapes=SHAPES,
                     model_path=model, model=read_model(model), measure=MeasureConfig(),
                     calibration={"samples": 4, "seed": 0}, device=device, workdir=workdir, store=open_store())
    backend = load_backend("tensorrt-rtx", knobs)
    record: dict = {"device": found, "backend_version": backend.version(), "precision": precision, "build": knobs}
    start = time.perf_counter()
    built = backend.build(ctx)
    record.update(build_s=round(time.perf_counter() - start, 3), engine_bytes=built.artifact.stat().st_size,
                  runs_on=built.info["runs_on"], inspector=built.info["layers"])
    try:
        runner = backend.load(built.artifact, ctx)
    except BackendUnsupported as exc:
        record.update(outcome="unsupported", reason=str(exc))
        return record
    try:
        feeds = ctx.measurement_feeds()
        outputs = runner.infer(feeds)
        record.update(outcome="ran", accuracy=_accuracy(model, feeds, outputs, precision))
    finally:
        runner.close()
    return record


def _accuracy(model: Path, feeds: dict, outputs: dict, precision: str) -> dict:
    import onnxruntime as ort

    from farm.accuracy_eval import evaluate

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    reference = dict(zip(names, session.run(names, feeds)))
    result = evaluate(outputs, reference, precision, {})
    return {k: result[k] for k in ("rel_l2_error", "cosine", "max_abs_error", "passed")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "examples/models/ppocr_det.onnx")
    parser.add_argument("--precision", default="fp16", choices=["fp32", "fp16", "bf16", "int8", "fp8"])
    parser.add_argument("--compute-capability", action="append", dest="targets",
                        help="build target such as 8.6 or 'current' (repeatable; default: all supported)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    args = parser.parse_args(argv)
    os.environ.setdefault("FARM_HOME", tempfile.mkdtemp(prefix="rtx-check-home-"))
    sys.path.insert(0, str(REPO))
    knobs = {"compute_capabilities": args.targets} if args.targets else {}
    when = datetime.now(timezone.utc)
    result: dict = {"command": " ".join([sys.executable, *sys.argv]), "date": when.isoformat(timespec="seconds"),
                    "host": socket.gethostname(), "platform": platform.platform(), "model": str(args.model)}
    with tempfile.TemporaryDirectory() as workdir:
        try:
            result.update(check(args.model, args.precision, knobs, Path(workdir)))
        except Exception as exc:  # record the failure itself: that is the finding
            result.update(outcome="error", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"rtx_runtime_check-{socket.gethostname()}-{when:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    print(f"{result.get('outcome')}: {result.get('reason') or result.get('error') or result.get('accuracy')}")
    print(f"wrote {path}")
    return 0 if result.get("outcome") in ("ran", "unsupported") else 1


if __name__ == "__main__":
    sys.exit(main())
