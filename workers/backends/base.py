"""The interface every backend implements.

A worker calls ``build`` once per job, then ``load`` the artifact into a
``Runner`` that can ``infer`` (for accuracy checks) and ``measure`` (timing).
Raise ``farm.errors.BackendUnsupported`` when the job cannot be done here
(precision the backend lacks, runtime refusing this GPU): the job then ends
``unsupported`` with that reason and the worker carries on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from farm.backends import BackendConfig
from farm.errors import BackendUnsupported
from farm.model_info import ModelInfo
from farm.spec import MeasureConfig


@dataclass
class DeviceContext:
    kind: str  # "cpu" | "gpu"
    name: str
    device_class: str
    index: int | None = None  # CUDA ordinal inside this (pinned) process
    compute_capability: str | None = None
    uuid: str | None = None
    versions: dict = field(default_factory=dict)  # as registered on the device row (workers/serve.py)
    driver_version: str | None = None

    def environment(self, backend: str) -> dict:
        """The environment this device gives ``backend``'s results (what reuse compares)."""
        from farm.backends import backend_config

        row = {"kind": self.kind, "driver_version": self.driver_version, "versions": self.versions}
        return backend_config(backend).capabilities().environment(row)


@dataclass
class JobContext:
    job_id: str
    precision: str
    batch_size: int
    shapes: dict[str, dict]  # input -> {min, opt, max}, job batch applied
    model_path: Path
    model: ModelInfo
    measure: MeasureConfig
    calibration: dict[str, Any]  # samples, seed, method, allow_overlap (spec ``calibration``)
    device: DeviceContext
    workdir: Path
    store: Any  # farm.store.ArtifactStore, for caches shared across jobs
    data: dict[str, np.ndarray] | None = None  # the user's input samples (spec ``data``), if any
    # Rows of ``data`` per role, decided at submit (farm.input_data.split_rows): calibration,
    # evaluation, overlap. None: jobs from before the split (first batch evaluates).
    rows: dict | None = None

    @property
    def run_shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(rng["opt"]) for name, rng in self.shapes.items()}

    def measurement_feeds(self) -> dict[str, np.ndarray]:
        """The inputs used for timing: the first evaluation batch."""
        return next(iter(self.evaluation_batches()))[0]

    def evaluation_batches(self):
        """(feeds, valid samples) of every evaluation batch: the evaluation
        rows of the user's data, else one synthetic batch (seed 0)."""
        from workers.inputs import feeds_from_data, make_feeds, row_batches

        if self.data is None:
            return [(make_feeds(self.model, self.run_shapes, seed=0), None)]
        if not self.rows:
            return [(feeds_from_data(self.model, self.data, self.run_shapes), None)]
        return row_batches(self.model, self.data, self.run_shapes, self.rows["evaluation"])

    def input_provenance(self) -> dict:
        """What the accuracy figures were computed on (stored with them)."""
        if self.data is None:
            batch = next((s[0] for s in self.run_shapes.values() if len(s)), 1)
            return {"source": "synthetic", "count": batch, "seed": 0,
                    "calibration": "synthetic" if self.precision in ("int8", "fp8") else None}
        if not self.rows:
            batch = next((s[0] for s in self.run_shapes.values() if len(s)), 1)
            return {"source": "data", "rows": [0, batch], "count": batch, "calibration_rows": None}
        start, stop = self.rows["evaluation"]
        return {"source": "data", "rows": [start, stop], "count": stop - start,
                "calibration_rows": self.rows.get("calibration"), "overlap": bool(self.rows.get("overlap"))}

    def calibration_feeds(self):
        """Calibration inputs for quantization (spec ``calibration``)."""
        from workers.inputs import calibration_batches

        samples = int(self.calibration.get("samples", 8))
        seed = int(self.calibration.get("seed", 0))
        rows = (self.rows or {}).get("calibration")
        return calibration_batches(self.model, self.run_shapes, samples, seed, data=self.data, rows=rows)


@dataclass
class BuildResult:
    artifact: Path  # the main artifact (engine, optimised model, compiled cache)
    build_s: float
    info: dict[str, Any] = field(default_factory=dict)  # resolved config + metadata, stored with the job
    extra_artifacts: dict[str, Path] = field(default_factory=dict)  # kind -> file (metadata json, ...)
    media_type: str = "application/octet-stream"


@dataclass
class TimingResult:
    samples_ms: list[float]  # per-iteration latency (GPU compute time on GPUs)
    e2e_samples_ms: list[float] = field(default_factory=list)  # with host<->device copies
    telemetry: dict[str, Any] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    memory_mb: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # how it was timed
    # Aggregate samples/s where latency does not give it (several streams at once); None: batch / mean latency
    throughput: float | None = None


class Runner(ABC):
    # Can ``measure`` run ``measure.streams`` > 1 copies concurrently? A runner
    # that cannot would report a one-stream figure under a many-stream label.
    multi_stream: bool = False

    @abstractmethod
    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def measure(self, feeds: dict[str, np.ndarray], config: MeasureConfig) -> TimingResult: ...

    def serving_instances(self, count: int) -> list[Callable[[dict[str, np.ndarray]], Any]]:
        """``count`` model instances for the batching server (workers.serving):
        each runs one batch at the job's shapes and returns its outputs on the
        host, and each may be called from its own thread while the others run.
        Default: one instance, ``infer``; a runner with independent contexts
        (TensorRT, torch) or a thread-safe session (ONNX Runtime) gives more."""
        if count != 1:
            raise BackendUnsupported(f"scenarios.instances {count}: this runner serves one instance only")
        return [self.infer]

    def profile_layers(self, feeds: dict[str, np.ndarray], config: MeasureConfig) -> dict[str, Any] | None:
        """A per-layer table (workers.timing.layers) from a separate profiling
        run, or None where the backend has no profiler."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class Backend(ABC):
    def __init__(self, config: BackendConfig):
        self.config = config

    @classmethod
    def classify(cls, exc: BaseException, precision: str) -> str | None:
        """The one-line ``unsupported`` reason for an error this backend
        recognises as "cannot take this model or configuration" (its
        library refusing an operator, an onnx check of the model it
        prepared); None for anything else, which stays a failure with its
        traceback (a bug). Backends extend it with their library's errors."""
        from workers.refusals import onnx_refusal

        return onnx_refusal(exc, f"preparing the model for {precision}")

    @abstractmethod
    def version(self) -> str: ...

    @abstractmethod
    def build(self, ctx: JobContext) -> BuildResult: ...

    @abstractmethod
    def load(self, artifact: Path, ctx: JobContext) -> Runner: ...
