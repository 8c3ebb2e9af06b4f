"""int8 vs fp32 on ONNX Runtime (CPU) for real pretrained models, by recipe
and calibration method (issue 22): speed ratio measured interleaved in one
run, accuracy on held-out realistic inputs, and the farm's gate verdict.

Models (PyPI wheels of the test extra): PP-OCRv4 det (rendered text pages,
map IoU at 0.3), PP-OCRv4 rec (rendered text lines, CTC sequence agreement),
PP-OCR cls (text lines, half upside down, top-1 agreement), Magika (bytes
of this machine's Python sources, top-1 agreement). 32 rows each:
calibration on rows 0-15, evaluation on rows 16-31 (farm.input_data's
default split). For each model: fp32 and int8 with the ``onnxruntime``
recipe (U8S8, all ops, QDQ) and the ``tensorrt`` recipe (symmetric int8 Q/DQ
at Conv/MatMul/Gemm), each with minmax / entropy / percentile calibration,
quantized by the farm's own code (workers/precision/int8.py) and judged by
farm.accuracy_eval with the metric the spec would declare.

Speed: every configuration's session is timed in ROUNDS rounds, the
configurations interleaved within each round (so a change of host load hits
all of them alike); a configuration's figure is the median over rounds of
its per-round median latency at batch 1; the ratio is fp32 / int8 (> 1:
int8 faster). Load average before and after is recorded: the machine is
shared with other work.

    python benchmarks/int8_cpu.py --out benchmarks/results/int8_cpu_<date>.md [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.accuracy_eval import evaluate_batches  # noqa: E402
from tests.real_models import by_key, text_images  # noqa: E402
from workers.precision.int8 import NothingQuantized, quantize_int8  # noqa: E402
from workers.precision.recipes import recipe  # noqa: E402

ROWS, CAL = 32, 16
RECIPES = ("onnxruntime", "tensorrt")
METHODS = ("minmax", "entropy", "percentile")


def magika_rows(rows: int) -> np.ndarray:
    files = sorted(p for p in Path(os.__file__).parent.glob("*.py") if p.stat().st_size > 2048)[:rows]
    out = np.full((rows, 2048), 256, dtype=np.int32)
    for row, path in enumerate(files):
        data = path.read_bytes()
        out[row, :1024] = np.frombuffer(data[:1024], np.uint8)
        out[row, 1024:] = np.frombuffer(data[-1024:], np.uint8)
    return out


def directions(rows: int) -> np.ndarray:
    images = text_images(rows, 48, 192, seed=3)
    images[1::2] = images[1::2, :, ::-1, ::-1]
    return images


def det_pages(rows: int) -> np.ndarray:
    sys.path.insert(0, str(REPO / "examples"))
    from make_text_images import page

    rng = np.random.default_rng(11)
    return np.stack([page(rng, 320) for _ in range(rows)]).astype(np.float32)


# key -> (input name, data maker, metric entry as a spec declares it)
CASES = {
    "ppocr-det": ("x", det_pages, {"output": "sigmoid_0.tmp_0", "metric": "iou", "threshold": 0.3, "min": 0.9}),
    "ppocr-rec": ("x", lambda n: text_images(n, 48, 320, seed=2),
                  {"output": "softmax_11.tmp_0", "metric": "sequence", "min": 0.9}),
    "ppocr-cls": ("x", directions, {"output": "save_infer_model/scale_0.tmp_1", "metric": "topk", "k": 1,
                                    "min": 0.99}),
    "magika": ("bytes", magika_rows, {"metric": "topk", "k": 1, "min": 0.99}),
}


def session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def outputs(sess, name: str, rows: np.ndarray) -> list[dict]:
    names = [o.name for o in sess.get_outputs()]
    return [dict(zip(names, sess.run(names, {name: rows[i:i + 1]}))) for i in range(len(rows))]


def time_round(sess, feeds: dict, seconds: float) -> float:
    sess.run(None, feeds)
    samples, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(samples) < 3:
        start = time.perf_counter()
        sess.run(None, feeds)
        samples.append((time.perf_counter() - start) * 1e3)
    return float(np.median(samples))


def run_model(key: str, rounds: int, seconds: float, work: Path) -> dict:
    name, make, metric = CASES[key]
    model = by_key(key).locate()
    data = make(ROWS)
    cal, held = data[:CAL], data[CAL:]
    configs, notes = {"fp32": model}, {}
    for rec in RECIPES:
        for method in METHODS:
            label = f"int8 {rec} {method}"
            start = time.time()
            try:
                configs[label] = quantize_int8(model, work / f"{key}-{rec}-{method}.onnx",
                                               [{name: cal[i:i + 1]} for i in range(len(cal))], method=method,
                                               how=recipe(rec))
                notes[label] = {"quantize_s": round(time.time() - start, 1)}
            except (NothingQuantized, Exception) as exc:  # a recipe the model defeats is a result too
                notes[label] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
    sessions = {label: session(path) for label, path in configs.items()}
    reference = outputs(sessions["fp32"], name, held)
    results = {}
    for label, sess in sessions.items():
        got = outputs(sess, name, held)
        verdict = evaluate_batches([(g, r, None) for g, r in zip(got, reference)],
                                   "fp32" if label == "fp32" else "int8", {"metrics": [metric]},
                                   reference_job=label == "fp32",
                                   inputs={"source": "data", "rows": [CAL, ROWS], "count": ROWS - CAL})
        per_output = next(iter(verdict["per_output"].values())) if metric.get("output") is None else \
            verdict["per_output"][metric["output"]]
        task = per_output["metrics"][0]
        results[label] = {"status": verdict["status"], "task": task["metric"], "value": task["value"],
                          "ci": task["ci"], "rel_l2": verdict["rel_l2_error"], **notes.get(label, {})}
    feeds = {name: held[:1]}
    times: dict[str, list[float]] = {label: [] for label in sessions}
    load_before = os.getloadavg()
    for _ in range(rounds):
        for label, sess in sessions.items():  # interleaved: every configuration once per round
            times[label].append(time_round(sess, feeds, seconds))
    load_after = os.getloadavg()
    fp32 = float(np.median(times["fp32"]))
    for label in sessions:
        p50 = float(np.median(times[label]))
        results[label].update(p50_ms=p50, speed_vs_fp32=fp32 / p50, rounds_ms=[round(t, 3) for t in times[label]])
    for label, note in notes.items():
        results.setdefault(label, note)
    return {"model": key, "file": model.name, "metric": metric, "load_before": load_before, "load_after": load_after,
            "results": results}


def markdown(runs: list[dict], command: str, started: str, wall: float) -> str:
    import platform

    lines = ["# int8 vs fp32 on ONNX Runtime (CPU): recipes and calibration methods (issue 22)", "",
             f"Command: `{command}`", "", f"Date: {started} (UTC); wall {wall:.0f} s", "",
             f"Machine: {platform.node()}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
             f"onnxruntime {__import__('onnxruntime').__version__}; **shared with other helpers' work** (load "
             "averages below): speed ratios are interleaved within one run, so a load change hits fp32 and int8 "
             "alike, but absolute latencies are the loaded host's.", "",
             f"Data: {ROWS} realistic rows per model; calibration rows 0-{CAL - 1}, evaluation rows {CAL}-{ROWS - 1} "
             "(held out). Batch 1. Gate: the farm's verdict (farm.accuracy_eval) with the declared task metric.", ""]
    for run in runs:
        m = run["metric"]
        bound = f"min {m['min']}" if "min" in m else f"max {m['max']}"
        lines += [f"## {run['model']} ({run['file']}): {m['metric']}{' k=' + str(m['k']) if 'k' in m else ''}"
                  f"{' threshold=' + str(m['threshold']) if 'threshold' in m else ''}, {bound}", "",
                  f"Load average (1/5/15 min) before {tuple(round(x, 2) for x in run['load_before'])}, after "
                  f"{tuple(round(x, 2) for x in run['load_after'])}.", "",
                  "| configuration | p50 ms | speed vs fp32 (x) | task metric [95 % CI] | rel L2 (pooled) | verdict | quantize s |",
                  "|---|---|---|---|---|---|---|"]
        for label, r in run["results"].items():
            if "error" in r:
                lines.append(f"| {label} | - | - | - | - | not built: {r['error']} | - |")
                continue
            lines.append(f"| {label} | {r['p50_ms']:.3f} | {r['speed_vs_fp32']:.2f} | {r['value']:.4f} "
                         f"[{r['ci'][0]:.4f}, {r['ci'][1]:.4f}] | {r['rel_l2']:.4g} | {r['status']} | "
                         f"{r.get('quantize_s', '-')} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.4, help="timed seconds per configuration per round")
    parser.add_argument("--models", default=",".join(CASES))
    args = parser.parse_args()
    started, clock = time.strftime("%Y-%m-%d %H:%M", time.gmtime()), time.time()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.models.split(","):
            runs.append(run_model(key, args.rounds, args.seconds, Path(tmp)))
            print(f"{key} done ({time.time() - clock:.0f} s)", flush=True)
    command = "python " + " ".join([str(Path(sys.argv[0]).relative_to(REPO) if Path(sys.argv[0]).is_absolute()
                                         else sys.argv[0]), *sys.argv[1:]])
    args.out.write_text(markdown(runs, command, started, time.time() - clock))
    args.out.with_suffix(".json").write_text(json.dumps(runs, indent=1, default=str))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
