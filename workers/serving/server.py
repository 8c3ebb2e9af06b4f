"""An in-process batching server around a loaded engine (the system under
test of the serving scenarios).

Requests (one sample each, identified by LoadGen's sample id) go into one
queue. Each of ``instances`` executor threads owns one model instance (its
own execution context / compiled replica / session, from
``Runner.serving_instances``) and, when free, forms a batch the way
Triton's dynamic batcher does: it takes what is queued, up to
``max_batch``; if that is less than ``max_batch`` and the oldest request
has waited less than ``queue_delay_us``, it waits for more until the delay
runs out or the batch is full. The batch is gathered from the sample pool,
padded to the engine's run batch (a fixed-shape engine runs its profile's
batch whatever the number of requests: the padding is its real cost), run,
and every request in it is completed.

Completions are reported through ``complete(request_ids)``; the server
itself knows nothing of LoadGen.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

Execute = Callable[[dict[str, np.ndarray]], object]


@dataclass
class Request:
    request_id: int  # LoadGen's response id
    sample: int  # index into the sample pool
    arrived: float = field(default_factory=time.perf_counter)


class SamplePool:
    """Per-sample inputs, gathered into batches by index.

    ``batched`` inputs carry the batch on axis 0 (one row per sample); the
    others (shape tensors, recurrent state of a fixed size) are passed as
    they are with every batch."""

    def __init__(self, feeds: dict[str, np.ndarray], batch_inputs: set[str], size: int):
        self.feeds, self.batch_inputs, self.size = feeds, batch_inputs, size

    def batch(self, samples: list[int], run_batch: int) -> dict[str, np.ndarray]:
        """The inputs for ``samples``, padded to ``run_batch`` rows by repeating the last one."""
        index = samples + [samples[-1]] * (run_batch - len(samples))
        return {name: (np.ascontiguousarray(value[index]) if name in self.batch_inputs else value)
                for name, value in self.feeds.items()}


class BatchingServer:
    def __init__(self, executors: list[Execute], pool: SamplePool, *, max_batch: int, run_batch: int,
                 queue_delay_us: int, complete: Callable[[list[Request]], None]):
        if not executors:
            raise ValueError("a batching server needs at least one instance")
        if not 1 <= max_batch <= run_batch:
            raise ValueError(f"max batch {max_batch} must be between 1 and the run batch {run_batch}")
        self.pool, self.max_batch, self.run_batch = pool, max_batch, run_batch
        self.queue_delay_s = queue_delay_us / 1e6
        self.complete = complete
        self._queue: deque[Request] = deque()
        self._ready = threading.Condition()
        self._stopping = False
        self.error: BaseException | None = None
        self.batch_sizes: dict[int, int] = {}  # formed batch size -> count
        self.busy_s = [0.0] * len(executors)
        self._threads = [threading.Thread(target=self._serve, args=(i, run), name=f"farm-serve-{i}", daemon=True)
                         for i, run in enumerate(executors)]
        for thread in self._threads:
            thread.start()

    def submit(self, requests: list[Request]) -> bool:
        """Queue ``requests``; False (nothing queued) once an instance has
        failed: the caller completes them itself, so the run ends, and
        raises ``error`` after it (never from inside LoadGen's callback)."""
        with self._ready:
            if self.error is not None:
                return False
            self._queue.extend(requests)
            self._ready.notify_all()
            return True

    def stop(self) -> None:
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        for thread in self._threads:
            thread.join()

    def _take(self) -> list[Request] | None:
        """The next batch (None: stopping). Called with nothing held."""
        with self._ready:
            while not self._queue:
                if self._stopping:
                    return None
                self._ready.wait()
            while len(self._queue) < self.max_batch and not self._stopping:
                left = self._queue[0].arrived + self.queue_delay_s - time.perf_counter()
                if left <= 0:
                    break
                self._ready.wait(left)
                if not self._queue:  # another instance took them meanwhile
                    return []
            count = min(len(self._queue), self.max_batch)
            batch = [self._queue.popleft() for _ in range(count)]
            self.batch_sizes[count] = self.batch_sizes.get(count, 0) + 1
            return batch

    def _serve(self, index: int, execute: Execute) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            if not batch:
                continue
            try:
                start = time.perf_counter()
                execute(self.pool.batch([r.sample for r in batch], self.run_batch))
                self.busy_s[index] += time.perf_counter() - start
            except BaseException as exc:  # the run must end, not hang waiting on this batch
                with self._ready:
                    self.error = self.error or exc
            self.complete(batch)

    def stats(self, wall_s: float) -> dict:
        formed = sum(self.batch_sizes.values())
        samples = sum(size * count for size, count in self.batch_sizes.items())
        return {"batches": formed, "mean_batch": samples / formed if formed else None,
                "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
                "instance_busy": [round(b / wall_s, 3) if wall_s > 0 else None for b in self.busy_s],
                "padded_rows": formed * self.run_batch - samples}
