"""Serving scenarios of one job (spec ``scenarios:``, farm/scenarios.py):
MLPerf LoadGen against an in-process batching server of the job's loaded
engine. Every backend goes through this one path; what differs per backend
is only how it makes its instances (``Runner.serving_instances``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from workers.backends.base import JobContext, Runner, TimingResult

POOL_BYTES = 64 * 2**20  # distinct samples LoadGen draws from, within this much host memory
POOL_MAX = 256


def _batched(info) -> bool:
    return info.rank is None or (info.rank > 0 and not info.is_fixed(0))


def sample_pool(ctx: JobContext, feeds: dict[str, np.ndarray]):
    """Distinct per-sample inputs: the user's data where given, else the
    measurement inputs' generator at a pool-sized batch."""
    from workers.inputs import feeds_from_data, make_feeds
    from workers.serving.server import SamplePool

    batched = {i.name for i in ctx.model.inputs if _batched(i)}
    if not batched:  # the model's batch is fixed: a request is one run of its inputs as they are
        return SamplePool(feeds, set(), 1)
    per_sample = sum(feeds[n].nbytes // max(feeds[n].shape[0], 1) for n in batched if feeds[n].ndim)
    size = min(POOL_MAX, POOL_BYTES // max(per_sample, 1))
    if ctx.data is not None:  # the user's samples, each once
        size = min(size, min(len(ctx.data[n]) for n in batched if n in ctx.data and np.ndim(ctx.data[n])) or size)
    size = int(max(ctx.batch_size, size))
    shapes = {n: ((size,) + tuple(s[1:]) if n in batched else tuple(s)) for n, s in ctx.run_shapes.items()}
    pool = feeds_from_data(ctx.model, ctx.data, shapes) if ctx.data is not None else make_feeds(ctx.model, shapes,
                                                                                                 seed=1)
    return SamplePool(pool, batched, size)


def call_ms(timing: TimingResult | None) -> float | None:
    """One engine call at the job's batch, host copies included where measured: what a SingleStream query costs."""
    if timing is None:
        return None
    samples = timing.e2e_samples_ms or timing.samples_ms
    return sorted(samples)[len(samples) // 2] if samples else None


def estimate_qps(timing: TimingResult | None, batch: int) -> float:
    """Samples/s the fixed-batch run reached: LoadGen's first expected rate."""
    if timing is None or not timing.samples_ms:
        return 100.0
    if timing.throughput:
        return float(timing.throughput)
    mean = sum(timing.samples_ms) / len(timing.samples_ms)
    return batch * 1000.0 / mean if mean > 0 else 100.0


def run_scenarios(runner: Runner, ctx: JobContext, serving: dict, feeds: dict[str, np.ndarray],
                  timing: TimingResult | None) -> tuple[dict, Path]:
    """(the job's ``serving`` result, a JSON file of LoadGen's summaries by run)."""
    from workers.serving.loadgen_run import ScenarioRunner

    executors = runner.serving_instances(int(serving["instances"]))
    scenarios = ScenarioRunner(executors, sample_pool(ctx, feeds), run_batch=ctx.batch_size, serving=serving,
                               outdir=ctx.workdir / "loadgen", device_uuid=ctx.device.uuid if ctx.device.kind == "gpu"
                               else None, estimate_qps=estimate_qps(timing, ctx.batch_size),
                               call_ms=call_ms(timing))
    result = scenarios.run()
    path = ctx.workdir / "loadgen-summaries.json"
    path.write_text(json.dumps(scenarios.summaries, indent=1))
    return result, path


def serve(runner: Runner, ctx: JobContext, serving: dict, feeds: dict[str, np.ndarray],
          timing: TimingResult | None) -> tuple[dict, Path | None]:
    """The executor's hook: the scenarios, or why this runner cannot serve them (the fixed-batch result stands)."""
    from farm.errors import BackendUnsupported

    try:
        import mlperf_loadgen  # noqa: F401
    except ImportError:
        return {"unsupported": "mlperf_loadgen is not installed on this worker (pip install mlcommons-loadgen)",
                "instances": serving.get("instances"), "queue_delay_us": serving.get("queue_delay_us"),
                "max_batch": ctx.batch_size}, None
    knobs = {"instances": serving.get("instances"), "queue_delay_us": serving.get("queue_delay_us"),
             "max_batch": ctx.batch_size}
    try:
        return run_scenarios(runner, ctx, serving, feeds, timing)
    except BackendUnsupported as exc:
        return {"unsupported": str(exc), **knobs}, None
    except Exception as exc:  # the fixed-batch result stands; the failure and its traceback are kept with it
        import logging
        import traceback

        logging.getLogger(__name__).exception("the serving scenarios of job %s failed", ctx.job_id)
        return {"failed": f"{type(exc).__name__}: {exc}"[:500], "traceback": traceback.format_exc(limit=12),
                **knobs}, None


def energy_of(ctx: JobContext, timing: TimingResult | None) -> dict:
    """Energy per inference of the fixed-batch measured window (the timing
    harness's NVML reading, workers.telemetry), or why there is none."""
    from workers.energy import NOT_MEASURED, per_inference

    if ctx.device.kind != "gpu":
        return dict(NOT_MEASURED)
    if timing is None:
        return {"measured": False, "reason": "nothing was timed"}
    reading = timing.telemetry.get("energy") or {
        "measured": False, "reason": "this timing harness took no NVML reading over its measured window"}
    iterations = timing.settings.get("measured_iterations") or len(timing.samples_ms)
    return per_inference(reading, int(iterations) * ctx.batch_size)


def serving_columns(outcome: dict, summaries_key: str | None) -> dict:
    """The measurement row's energy, inferences_per_joule and serving columns."""
    energy = outcome.get("energy")
    serving = outcome.get("serving")
    return {"energy": energy, "inferences_per_joule": (energy or {}).get("inferences_per_joule"),
            "serving": {**serving, "loadgen_summaries_sha256": summaries_key} if serving is not None else None}
