"""Multi-stream throughput (trtexec's ``--infStreams N``).

Each lane is one independent copy of the model (TensorRT: an execution
context with its own buffers; torch: a compiled call with its own inputs and
CUDA graph) with its own CUDA stream. The host queues iterations on the
lanes round-robin, ``QUEUE_DEPTH`` in flight per lane, so the GPU runs the
lanes concurrently. Reported:

- per-iteration latency of every lane (CUDA events on its stream), as the
  job's samples, and each lane's median;
- aggregate throughput: every lane's iterations x batch over the host wall
  time from the first timed launch to the end of the last one.

Same warm-up / duration / iterations rules as ``workers.timing.cuda``
(``iterations`` is per lane).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

from farm.spec import MeasureConfig
from workers.backends.base import TimingResult
from workers.timing.cuda import QUEUE_DEPTH, _apply_device_flags, format_uuid, resolve_settings
from workers.timing.cuda_runtime import check, runtime

Enqueue = Callable[[int], None]


@dataclass
class Lane:
    enqueue: Enqueue  # queues one inference on the given stream
    stream: int | None = None  # the stream it must run on (torch); None: the harness makes one


class _LaneState:
    def __init__(self, rt, lane: Lane, flags: int, graph: bool):
        self.rt, self.lane = rt, lane
        self.own_stream = lane.stream is None
        self.stream = (check(rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking), "cudaStreamCreateWithFlags")
                       if lane.stream is None else lane.stream)
        self.slots = [(check(rt.cudaEventCreateWithFlags(flags), "cudaEventCreateWithFlags"),
                       check(rt.cudaEventCreateWithFlags(flags), "cudaEventCreateWithFlags"))
                      for _ in range(QUEUE_DEPTH)]
        self.pending = [False] * QUEUE_DEPTH
        self.samples: list[float] = []
        self.count = 0
        self.graph = self.graph_exec = None
        self.launch = self._capture() if graph else lane.enqueue

    def _capture(self) -> Enqueue:
        rt = self.rt
        check(rt.cudaStreamBeginCapture(self.stream, rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal),
              "cudaStreamBeginCapture")
        try:
            self.lane.enqueue(self.stream)
        finally:
            err, graph = rt.cudaStreamEndCapture(self.stream)
        check((err,), "CUDA graph capture of a lane's enqueue (set measure.cuda_graph: false if it cannot be captured)")
        self.graph = graph
        self.graph_exec = check(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        return lambda stream: check(rt.cudaGraphLaunch(self.graph_exec, stream), "cudaGraphLaunch")

    def step(self, keep: bool) -> None:
        index = self.count % QUEUE_DEPTH
        if self.pending[index]:
            self._collect(index, keep)
        start, end = self.slots[index]
        check(self.rt.cudaEventRecord(start, self.stream), "cudaEventRecord")
        self.launch(self.stream)
        check(self.rt.cudaEventRecord(end, self.stream), "cudaEventRecord")
        self.pending[index] = True
        self.count += 1

    def drain(self, keep: bool) -> None:
        for index in range(QUEUE_DEPTH):
            if self.pending[index]:
                self._collect(index, keep)

    def _collect(self, index: int, keep: bool) -> None:
        start, end = self.slots[index]
        check(self.rt.cudaEventSynchronize(end), "cudaEventSynchronize (an enqueued inference failed)")
        self.pending[index] = False
        if keep:
            self.samples.append(check(self.rt.cudaEventElapsedTime(start, end), "cudaEventElapsedTime"))

    def close(self) -> None:
        rt = self.rt
        for start, end in self.slots:
            rt.cudaEventDestroy(start)
            rt.cudaEventDestroy(end)
        if self.graph_exec is not None:
            rt.cudaGraphExecDestroy(self.graph_exec)
        if self.graph is not None:
            rt.cudaGraphDestroy(self.graph)
        if self.own_stream:
            rt.cudaStreamDestroy(self.stream)


def _run(states: list[_LaneState], until_ms: float, min_iterations: int, keep: bool) -> None:
    for state in states:
        state.count = 0
    deadline = time.perf_counter() + until_ms / 1000.0
    while min(s.count for s in states) < min_iterations or time.perf_counter() < deadline:
        for state in states:
            state.step(keep)
    for state in states:
        state.drain(keep)


def aggregate(lane_samples: list[list[float]], wall_ms: float, batch_size: int) -> dict:
    """Aggregate throughput and per-lane latency from what the lanes measured."""
    iterations = sum(len(s) for s in lane_samples)
    return {
        "streams": len(lane_samples),
        "aggregate_throughput": iterations * batch_size * 1000.0 / wall_ms if wall_ms > 0 else None,
        "aggregate_wall_ms": wall_ms,
        "per_stream": [{"stream": i, "iterations": len(s), "p50_ms": statistics.median(s) if s else None}
                       for i, s in enumerate(lane_samples)],
    }


def measure_streams(lanes: list[Lane], config: MeasureConfig, *, batch_size: int = 1,
                    capture_graph: bool | None = None, device: int = 0) -> TimingResult:
    if not lanes:
        raise ValueError("measure_streams needs at least one lane")
    settings = resolve_settings(config, capture_graph=capture_graph, has_copies=False)
    rt = runtime()
    check(rt.cudaSetDevice(device), f"cudaSetDevice({device})")
    settings["device_flags"] = _apply_device_flags(rt, settings["sync"])
    props = check(rt.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    flags = rt.cudaEventBlockingSync if settings["sync"] == "blocking" else rt.cudaEventDefault
    states: list[_LaneState] = []
    try:
        for lane in lanes:
            states.append(_LaneState(rt, lane, flags, settings["cuda_graph"]))
        _run(states, config.warmup_ms, 1, keep=False)
        free, total = check(rt.cudaMemGetInfo(), "cudaMemGetInfo")
        start = time.perf_counter()
        _run(states, config.duration_ms, config.iterations, keep=True)
        wall_ms = (time.perf_counter() - start) * 1000.0
    finally:
        for state in states:
            state.close()
    lane_samples = [s.samples for s in states]
    settings.update(aggregate(lane_samples, wall_ms, batch_size), clock="cuda events per stream; throughput "
                    "from host wall time", batch_size=batch_size, device_uuid=format_uuid(props.uuid.bytes),
                    measured_iterations=sum(map(len, lane_samples)),
                    # memory_mb is derived by the executor from this (one way for every backend)
                    device_used_mb=(total - free) / 2**20, harness_device_mb=0.0)
    result = TimingResult(samples_ms=[x for s in lane_samples for x in s], settings=settings)
    result.throughput = settings["aggregate_throughput"]
    return result
