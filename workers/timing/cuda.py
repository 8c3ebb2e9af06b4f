"""GPU timing with CUDA events through cuda-python: one harness over N lanes.

A lane is one independent copy of the model with its own CUDA stream: an
``enqueue(stream)`` that queues one inference on the given stream
(TensorRT: ``context.execute_async_v3(stream)`` of its own execution
context; torch: a compiled call with its own inputs and CUDA graph) and,
for end-to-end latency, its host<->device copies. Single-stream timing is
one lane; ``measure.streams: N`` is N lanes (trtexec's ``--infStreams N``).
Every lane count gets the same protocol, so figures of a ``streams: [1, 2,
4]`` axis compare:

- warm-up for ``warmup_ms`` (at least one iteration per lane), then iterate
  until both ``duration_ms`` and ``iterations`` (per lane) are reached; the
  host queues the lanes round-robin;
- per iteration of a lane: with ``l2_flush``, a memset of twice the L2 on
  the lane's stream first; GPU compute time between events around the
  enqueue (or the graph launch); with ``end_to_end``, also time from before
  the H2D copies to after the D2H copies;
- ``QUEUE_DEPTH`` iterations in flight per lane, so the host queues the
  next one while the GPU runs this one (as trtexec does) and launch overhead
  that the GPU would not see back to back stays out of the compute time;
- a CUDA graph per lane unless the spec or the backend says otherwise
  (``DEFAULT_CUDA_GRAPH``; torch captures its own);
- ``sync``: "spin" (the default: trtexec 11's, ``DEFAULT_SYNC``) busy-waits
  on events, "blocking" makes the host sleep on them; the device scheduling
  flags are set to match (``sync_flags_not_applied`` when the context
  refused them);
- NVML telemetry over the timed run, and the ``host_bound`` flag
  (workers.timing.host_bound) from the host's enqueue time per lane.

Reported: every lane's per-iteration latencies as the samples (and its
end-to-end ones), each lane's median (``per_stream``) and the aggregate
throughput (every iteration x batch over the host wall time of the timed
run). With more than one lane the result's throughput is that aggregate;
with one lane it is batch / latency, as for any backend.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

from farm.spec import MeasureConfig
from workers.backends.base import TimingResult
from workers.timing.cuda_runtime import CudaError, check, error_name, runtime

# Iterations in flight. A host woken from a blocking event wait takes tens of
# microseconds to queue the next launch; with 4 queued, graphs of a few tens
# of microseconds still run back to back.
QUEUE_DEPTH = 4
SYNC_MODES = ("blocking", "spin")
# The farm's one default for every GPU backend and every lane count where the
# spec leaves the knob unset (trtexec 11's): capture a CUDA graph where the
# backend can, and spin-wait. Backends that cannot capture (a data-dependent
# output allocation) record why they ran without one. docs/fields.md,
# "Timing protocol".
DEFAULT_CUDA_GRAPH = True
DEFAULT_SYNC = "spin"
# Writing twice the L2 capacity evicts it even though replacement is not strict LRU.
L2_FLUSH_FACTOR = 2

Enqueue = Callable[[int], None]


@dataclass
class Lane:
    """One copy of the model on its own stream."""

    enqueue: Enqueue  # queues one inference on the given stream
    stream: int | None = None  # the stream it must run on (torch, a TensorRT context); None: the harness makes one
    inputs_h2d: Enqueue | None = None  # queues the input copies (end-to-end timing)
    outputs_d2h: Enqueue | None = None  # queues the output copies

    @property
    def has_copies(self) -> bool:
        return self.inputs_h2d is not None and self.outputs_d2h is not None


def resolve_settings(config: MeasureConfig, *, capture_graph: bool | None = None, has_copies: bool = False) -> dict:
    """How to time, from the job's MeasureConfig and the backend's defaults.

    ``capture_graph``: the backend's choice (None = the config's, with
    ``DEFAULT_CUDA_GRAPH`` where the config leaves it unset). Backends that
    graph their work themselves (torch captures its compiled call) pass
    False. ``has_copies``: every lane has H2D/D2H callables; end-to-end
    timing defaults to on when they do.
    """
    graph = wants_graph(config) if capture_graph is None else capture_graph
    end_to_end = has_copies if config.end_to_end is None else config.end_to_end
    if end_to_end and not has_copies:
        raise ValueError("end_to_end timing needs the backend's inputs_h2d and outputs_d2h copies")
    sync = config.sync or DEFAULT_SYNC
    if sync not in SYNC_MODES:
        raise ValueError(f"measure.sync must be one of {', '.join(SYNC_MODES)} (got {sync!r})")
    return {
        "clock": "cuda events (cudaEventElapsedTime) per lane; throughput from host wall time",
        "cuda_graph": bool(graph),
        "end_to_end": bool(end_to_end),
        "l2_flush": bool(config.l2_flush),
        "sync": sync,
        "queue_depth": QUEUE_DEPTH,
        "warmup_ms": config.warmup_ms,
        "duration_ms": config.duration_ms,
        "iterations": config.iterations,
    }


def wants_graph(config: MeasureConfig) -> bool:
    """Capture a CUDA graph? On unless the spec's ``measure.cuda_graph`` is false."""
    return DEFAULT_CUDA_GRAPH if config.cuda_graph is None else bool(config.cuda_graph)


def format_uuid(raw: bytes) -> str:
    """NVML's spelling of a CUDA device UUID: GPU-8-4-4-4-12 hex digits."""
    text = bytes(raw[:16]).hex()
    return f"GPU-{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


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


class _Slot:
    """The events of one in-flight iteration."""

    def __init__(self, rt, flags: int, end_to_end: bool):
        names = ("e2e_start", "start", "end", "e2e_end") if end_to_end else ("start", "end")
        self.events = {n: check(rt.cudaEventCreateWithFlags(flags), "cudaEventCreateWithFlags") for n in names}
        self.pending = False

    @property
    def last(self):
        return self.events.get("e2e_end", self.events["end"])


class _LaneRun:
    """Stream, events and graph of one lane in one measurement; close() frees them."""

    def __init__(self, rt, lane: Lane, settings: dict, flush: tuple[int | None, int]):
        self.rt, self.lane, self.settings = rt, lane, settings
        self.flush_ptr, self.flush_bytes = flush
        self.own_stream = lane.stream is None
        self.stream = (check(rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking), "cudaStreamCreateWithFlags")
                       if lane.stream is None else lane.stream)
        flags = rt.cudaEventBlockingSync if settings["sync"] == "blocking" else rt.cudaEventDefault
        self.slots = [_Slot(rt, flags, settings["end_to_end"]) for _ in range(QUEUE_DEPTH)]
        self.graph = self.graph_exec = None
        self.count = 0
        self.samples: list[float] = []
        self.e2e: list[float] = []
        self.host_ms: list[float] = []  # host time inside the enqueue call, per kept iteration
        self.launch = self._prepare()

    def _prepare(self) -> Enqueue:
        if not self.settings["cuda_graph"]:
            return self.lane.enqueue
        rt = self.rt
        if not self.stream:
            raise CudaError("CUDA graph capture needs a non-default stream; the backend passed stream 0")
        mode = rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        check(rt.cudaStreamBeginCapture(self.stream, mode), "cudaStreamBeginCapture")
        try:
            self.lane.enqueue(self.stream)
        finally:
            # End the capture even if enqueue failed, or the stream stays unusable.
            err, graph = rt.cudaStreamEndCapture(self.stream)
        check((err,), "CUDA graph capture of the enqueue (set measure.cuda_graph: false if it cannot be captured)")
        self.graph = graph
        self.graph_exec = check(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        return lambda stream: check(rt.cudaGraphLaunch(self.graph_exec, stream), "cudaGraphLaunch")

    def step(self, keep: bool) -> None:
        rt, slot = self.rt, self.slots[self.count % QUEUE_DEPTH]
        if slot.pending:
            self._collect(slot, keep)
        if self.flush_ptr is not None:
            check(rt.cudaMemsetAsync(self.flush_ptr, 0, self.flush_bytes, self.stream), "L2 flush memset")
        events = slot.events
        if "e2e_start" in events:
            self._record(events["e2e_start"])
            self.lane.inputs_h2d(self.stream)  # type: ignore[misc]  # end_to_end implies copies (resolve_settings)
        self._record(events["start"])
        begin = time.perf_counter()
        self.launch(self.stream)
        if keep:
            self.host_ms.append((time.perf_counter() - begin) * 1000.0)
        self._record(events["end"])
        if "e2e_end" in events:
            self.lane.outputs_d2h(self.stream)  # type: ignore[misc]
            self._record(events["e2e_end"])
        slot.pending = True
        self.count += 1

    def drain(self, keep: bool) -> None:
        for slot in self.slots:
            if slot.pending:
                self._collect(slot, keep)

    def _record(self, event) -> None:
        check(self.rt.cudaEventRecord(event, self.stream), "cudaEventRecord")

    def _collect(self, slot: _Slot, keep: bool) -> None:
        rt, events = self.rt, slot.events
        check(rt.cudaEventSynchronize(slot.last), "cudaEventSynchronize (an enqueued inference failed)")
        slot.pending = False
        if not keep:
            return
        self.samples.append(check(rt.cudaEventElapsedTime(events["start"], events["end"]), "cudaEventElapsedTime"))
        if "e2e_start" in events:
            self.e2e.append(check(rt.cudaEventElapsedTime(events["e2e_start"], events["e2e_end"]),
                                  "cudaEventElapsedTime"))

    def close(self) -> None:
        rt = self.rt
        # Best effort: a failed measurement must not hide its error behind cleanup errors.
        for slot in self.slots:
            for event in slot.events.values():
                rt.cudaEventDestroy(event)
        if self.graph_exec is not None:
            rt.cudaGraphExecDestroy(self.graph_exec)
        if self.graph is not None:
            rt.cudaGraphDestroy(self.graph)
        if self.own_stream:
            rt.cudaStreamDestroy(self.stream)


def _apply_device_flags(rt, sync: str) -> str:
    """Set the device's scheduling to match ``sync`` (stream and device
    synchronisation in the backend follow it); returns what happened."""
    flag = rt.cudaDeviceScheduleBlockingSync if sync == "blocking" else rt.cudaDeviceScheduleSpin
    err = rt.cudaSetDeviceFlags(flag)[0]
    if err == rt.cudaError_t.cudaSuccess:
        return "cudaDeviceScheduleBlockingSync" if sync == "blocking" else "cudaDeviceScheduleSpin"
    # An active context may refuse new flags; the events still follow ``sync``.
    return f"unchanged ({error_name(err)})"


def _run(runs: list[_LaneRun], until_ms: float, min_iterations: int, keep: bool) -> int:
    """Queue the lanes round-robin until both limits are met; returns the iterations per lane."""
    for run in runs:
        run.count = 0
    deadline = time.perf_counter() + until_ms / 1000.0
    while min(r.count for r in runs) < min_iterations or time.perf_counter() < deadline:
        for run in runs:
            run.step(keep)
    for run in runs:
        run.drain(keep)
    return min(r.count for r in runs)


def _flush_buffer(rt, settings: dict, device: int) -> tuple[int | None, int]:
    """One L2-flush buffer for every lane (the L2 is the device's, not a stream's)."""
    if not settings["l2_flush"]:
        return None, 0
    l2 = check(rt.cudaDeviceGetAttribute(rt.cudaDeviceAttr.cudaDevAttrL2CacheSize, device), "L2 size query")
    size = L2_FLUSH_FACTOR * int(l2)
    return check(rt.cudaMalloc(size), "cudaMalloc (L2 flush buffer)"), size


def measure_lanes(lanes: list[Lane], config: MeasureConfig, *, batch_size: int | None = None,
                  capture_graph: bool | None = None, device: int = 0, telemetry: bool = True) -> TimingResult:
    """Time ``lanes`` concurrently on the GPU; see the module docstring for the protocol.

    ``capture_graph``: the backend's graph choice (resolve_settings).
    ``device``: the CUDA ordinal in this process (0 in a pinned worker).
    """
    if not lanes:
        raise ValueError("measure_lanes needs at least one lane")
    settings = resolve_settings(config, capture_graph=capture_graph, has_copies=all(l.has_copies for l in lanes))
    rt = runtime()
    check(rt.cudaSetDevice(device), f"cudaSetDevice({device})")
    settings["device_flags"] = _apply_device_flags(rt, settings["sync"])
    fallbacks = {}
    if settings["device_flags"].startswith("unchanged"):
        # The context existed already (the backend made it): the device keeps
        # its scheduling; only the events follow ``sync``.
        fallbacks["sync_flags_not_applied"] = (f"measure.sync {settings['sync']}: the device scheduling flags "
                                               f"stayed {settings['device_flags']}; only events follow it")
    props = check(rt.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    uuid = format_uuid(props.uuid.bytes)
    flush = _flush_buffer(rt, settings, device)
    runs: list[_LaneRun] = []
    sampler = None
    try:
        for lane in lanes:
            runs.append(_LaneRun(rt, lane, settings, flush))
        warm = _run(runs, config.warmup_ms, 1, keep=False)
        free, total = check(rt.cudaMemGetInfo(), "cudaMemGetInfo")
        sampler = _sampler(uuid) if telemetry else None
        start = time.perf_counter()
        if sampler:
            sampler.start()
        try:
            _run(runs, config.duration_ms, config.iterations, keep=True)
        finally:
            if sampler:
                sampler.stop()
        wall_ms = (time.perf_counter() - start) * 1000.0
    finally:
        for run in runs:
            run.close()
        if flush[0] is not None:
            rt.cudaFree(flush[0])
    lane_samples = [r.samples for r in runs]
    settings.update(aggregate(lane_samples, wall_ms, batch_size or 1),
                    stream="harness" if all(l.stream is None for l in lanes) else "backend",
                    warmup_iterations=warm, measured_iterations=sum(map(len, lane_samples)),
                    measured_wall_ms=wall_ms, batch_size=batch_size, device_uuid=uuid, device_name=_text(props.name),
                    l2_flush_bytes=flush[1], fallbacks=fallbacks,
                    # memory_mb is derived from these by the worker (one way for every backend)
                    device_used_mb=(total - free) / 2**20, harness_device_mb=flush[1] / 2**20)
    result = TimingResult(samples_ms=[x for r in runs for x in r.samples],
                          e2e_samples_ms=[x for r in runs for x in r.e2e], settings=settings, flags=list(fallbacks))
    if len(lanes) > 1:
        result.throughput = settings["aggregate_throughput"]
    _flag_host_bound(result, [x for r in runs for x in r.host_ms], wall_ms, len(lanes))
    if sampler:
        from workers.telemetry import flags_for

        result.telemetry = sampler.summary()
        result.flags.extend(flags_for(result.telemetry))
    return result


def measure_enqueue(enqueue: Enqueue, config: MeasureConfig, *, batch_size: int | None = None,
                    inputs_h2d: Enqueue | None = None, outputs_d2h: Enqueue | None = None,
                    stream: int | None = None, capture_graph: bool | None = None, device: int = 0,
                    telemetry: bool = True) -> TimingResult:
    """One lane: ``measure_lanes([Lane(enqueue, stream, inputs_h2d, outputs_d2h)], ...)``."""
    return measure_lanes([Lane(enqueue, stream, inputs_h2d, outputs_d2h)], config, batch_size=batch_size,
                         capture_graph=capture_graph, device=device, telemetry=telemetry)


def _flag_host_bound(result: TimingResult, host_ms: list[float], wall_ms: float, lanes: int) -> None:
    from workers.timing import host_bound

    summary = host_bound.summarize(result.samples_ms, host_ms, wall_ms, lanes)
    result.settings["host_bound"] = summary
    if summary["host_bound"]:
        result.flags.append(host_bound.FLAG)


def _sampler(uuid: str):
    from workers.telemetry import Sampler

    return Sampler(uuid)


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.split(b"\0", 1)[0].decode(errors="replace")
    return str(value)
