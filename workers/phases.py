"""Where a worker's time goes, job by job.

The task starts a clock per message and the executor marks the end of each
phase (claim, model, build, reference outputs, ...). With FARM_PHASE_LOG
set to a file, every job appends one JSON line there: its phase durations
and the wall-clock instants the task started and returned, so the time
between two jobs (message ack and the next delivery) can be told apart from
the time inside them. benchmarks/farm_overhead.py reads it. Without
FARM_PHASE_LOG the clock costs a few perf_counter calls per job.
"""

from __future__ import annotations

import json
import os
import time


class PhaseClock:
    def __init__(self, job_id: str, worker: str):
        self.job_id, self.worker = job_id, worker
        self.started = time.time()
        self.last = time.perf_counter()
        self.phases: dict[str, float] = {}

    def lap(self, name: str) -> None:
        """The phase ``name`` ended now (repeated names add up)."""
        now = time.perf_counter()
        self.phases[name] = self.phases.get(name, 0.0) + (now - self.last) * 1000.0
        self.last = now

    def write(self, status: str) -> None:
        path = os.environ.get("FARM_PHASE_LOG")
        if not path:
            return
        line = {"job": self.job_id, "worker": self.worker, "status": status, "task_start": self.started,
                "task_end": time.time(), "phases_ms": {k: round(v, 3) for k, v in self.phases.items()}}
        # One write per line (O_APPEND): the lines of several workers never interleave.
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")


_current: PhaseClock | None = None


def start(job_id: str, worker: str) -> PhaseClock:
    global _current
    _current = PhaseClock(job_id, worker)
    return _current


def lap(name: str) -> None:
    if _current is not None:
        _current.lap(name)
