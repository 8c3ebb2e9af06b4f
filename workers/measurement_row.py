"""The measurement mapping: what a job's run becomes in the measurements table.

One meaning per column for every backend: statistics beside the raw
samples (farm.stats), memory_mb derived one way (set_memory), the timing
flags followed by every fallback the build recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

from farm.db import Job, Measurement
from farm.stats import summarize
from workers import environment
from workers.backends.base import BuildResult, TimingResult
from workers.serving import serving_columns


def set_memory(timing: TimingResult, before_mb: float | None) -> None:
    """memory_mb, one meaning for every backend: the device memory the
    loaded model holds at the job's shapes (weights, activations, I/O
    buffers, workspace), i.e. used device memory after the warm-up less
    before the load, less the harness's own buffers. Not measured on CPUs."""
    used = timing.settings.get("device_used_mb")
    if before_mb is None or used is None:
        timing.memory_mb = None
        return
    timing.memory_mb = max(used - before_mb - timing.settings.get("harness_device_mb", 0.0), 0.0)
    timing.settings["memory_before_load_mb"] = before_mb


def flags(built: BuildResult, timing: TimingResult | None) -> list[str]:
    """Timing flags, then every fallback the build recorded (build_info
    ``fallbacks``: flag -> what was done instead), once each."""
    found = list(timing.flags) if timing else []
    return found + [f for f in (built.info.get("fallbacks") or {}) if f not in found]


def profile_summary(path: Path | None, key: str | None) -> dict:
    """The top rows of the layer profile, kept with the measurement so reports need no store access."""
    if path is None:
        return {}
    table = json.loads(path.read_text())
    top = [{k: row.get(k) for k in ("name", "type", "precision", "tactic", "median_ms", "share")}
           for row in table["layers"][:15]]
    return {"layer_profile": {"artifact_sha256": key, "source": table["source"], "iterations": table["iterations"],
                              "total_median_ms": table["total_median_ms"], "rows": len(table["layers"]), "top": top}}


def measurement_row(job: Job, attempt: int, device_id, built: BuildResult, timing: TimingResult | None,
                    outcome: dict, key: str, extras: dict) -> Measurement:
    stats = summarize(timing.samples_ms, job.batch_size) if timing else {}
    if timing and timing.throughput is not None:
        stats["throughput"] = timing.throughput  # several streams at once: aggregate, not batch / latency
    e2e = summarize(timing.e2e_samples_ms, job.batch_size) if timing and timing.e2e_samples_ms else {}
    accuracy = outcome["accuracy"] or {}
    return Measurement(
        job_id=job.id, attempt=attempt, device_id=device_id, measured=timing is not None,
        unsupported_reason=outcome["unsupported"],
        samples_ms=list(timing.samples_ms) if timing else [],
        count=stats.get("count"), mean_ms=stats.get("mean_ms"), p50_ms=stats.get("p50_ms"),
        p90_ms=stats.get("p90_ms"), p95_ms=stats.get("p95_ms"), p99_ms=stats.get("p99_ms"),
        stdev_ms=stats.get("stdev_ms"), cv=stats.get("cv"), throughput=stats.get("throughput"),
        e2e_p50_ms=e2e.get("p50_ms"), e2e_p99_ms=e2e.get("p99_ms"),
        build_s=built.build_s, artifact_size=built.artifact.stat().st_size,
        memory_mb=timing.memory_mb if timing else None,
        max_abs_error=accuracy.get("max_abs_error"), rel_l2_error=accuracy.get("rel_l2_error"),
        cosine=accuracy.get("cosine"), accuracy_pass=accuracy.get("passed"), accuracy=accuracy,
        accuracy_status=accuracy.get("status", "unchecked"), accuracy_inputs=accuracy.get("inputs_summary"),
        accuracy_metric=accuracy.get("metric_summary"),
        telemetry={**(timing.telemetry if timing else {}), "remeasured": outcome["remeasured"],
                   "timing_settings": timing.settings if timing else {},
                   "e2e_samples_ms": timing.e2e_samples_ms if timing else [],
                   **profile_summary(outcome.get("layer_profile"), extras.get("layer-profile"))},
        **serving_columns(outcome, extras.get("loadgen-summaries")),
        flags=flags(built, timing),
        environment={**environment.capture(), "backend_environment": outcome.get("environment")},
        build_info={**built.info, "artifact_sha256": key, "extra_artifacts": extras},
    )
