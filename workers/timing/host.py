"""Host-clock timing for backends that run synchronously on the CPU.

Same protocol as trtexec: warm up for ``warmup_ms``, then run until both
``duration_ms`` and ``iterations`` are reached. Samples are per-call wall
times from ``time.perf_counter_ns``.
"""

from __future__ import annotations

import time
from typing import Callable

from farm.spec import MeasureConfig


def time_host(call: Callable[[], object], config: MeasureConfig) -> list[float]:
    clock = time.perf_counter_ns
    warmup_end = clock() + int(config.warmup_ms * 1e6)
    call()  # at least one warm-up call, even with warmup_ms = 0
    while clock() < warmup_end:
        call()
    samples: list[float] = []
    deadline = clock() + int(config.duration_ms * 1e6)
    while len(samples) < config.iterations or clock() < deadline:
        start = clock()
        call()
        samples.append((clock() - start) / 1e6)
    return samples
