"""GPU timing with CUDA events through cuda-python (trtexec's protocol).

Any backend hands over an ``enqueue(stream)`` that queues one inference on
the given CUDA stream (TensorRT: ``context.execute_async_v3(stream)``;
torch: the compiled call on that stream) and, for end-to-end latency, the
host<->device copies. The harness owns the stream, the events and the
optional L2-flush buffer and CUDA graph:

- warm-up for ``warmup_ms`` (at least one iteration), then iterate until
  both ``duration_ms`` and ``iterations`` are reached;
- per iteration, GPU compute time between events around the enqueue (or the
  graph launch); with ``end_to_end``, also time from before the H2D copies
  to after the D2H copies;
- ``QUEUE_DEPTH`` iterations in flight, so the host queues the next one
  while the GPU runs this one (as trtexec does) and launch overhead that the
  GPU would not see back to back stays out of the compute time;
- ``sync``: "blocking" (trtexec's default) makes the host sleep on events,
  "spin" busy-waits; event and device scheduling flags are set to match.
"""

from __future__ import annotations

import time
from typing import Callable

from farm.spec import MeasureConfig
from workers.backends.base import TimingResult
from workers.timing.cuda_runtime import CudaError, check, error_name, runtime

# Iterations in flight. A host woken from a blocking event wait takes tens of
# microseconds to queue the next launch; with 4 queued, graphs of a few tens
# of microseconds still run back to back.
QUEUE_DEPTH = 4
SYNC_MODES = ("blocking", "spin")
# The farm's one default for every GPU backend where the spec leaves the knob
# unset (trtexec 11's): capture a CUDA graph where the backend can, and
# spin-wait. Backends that cannot capture (a data-dependent output
# allocation) record why they ran without one.
DEFAULT_CUDA_GRAPH = True
DEFAULT_SYNC = "spin"
# Writing twice the L2 capacity evicts it even though replacement is not strict LRU.
L2_FLUSH_FACTOR = 2

Enqueue = Callable[[int], None]


def resolve_settings(config: MeasureConfig, *, capture_graph: bool | None = None, has_copies: bool = False) -> dict:
    """How to time, from the job's MeasureConfig and the backend's defaults.

    ``capture_graph``: the backend's choice (None = the config's, with
    ``DEFAULT_CUDA_GRAPH`` where the config leaves it unset). Backends that
    graph their work themselves (torch captures its compiled call) pass False. ``has_copies``: the backend gave H2D/D2H callables;
    end-to-end timing defaults to on when it did.
    """
    graph = wants_graph(config) if capture_graph is None else capture_graph
    end_to_end = has_copies if config.end_to_end is None else config.end_to_end
    if end_to_end and not has_copies:
        raise ValueError("end_to_end timing needs the backend's inputs_h2d and outputs_d2h copies")
    sync = config.sync or DEFAULT_SYNC
    if sync not in SYNC_MODES:
        raise ValueError(f"measure.sync must be one of {', '.join(SYNC_MODES)} (got {sync!r})")
    return {
        "clock": "cuda events (cudaEventElapsedTime)",
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


class _Slot:
    """The events of one in-flight iteration."""

    def __init__(self, rt, flags: int, end_to_end: bool):
        names = ("e2e_start", "start", "end", "e2e_end") if end_to_end else ("start", "end")
        self.events = {n: check(rt.cudaEventCreateWithFlags(flags), "cudaEventCreateWithFlags") for n in names}
        self.pending = False

    @property
    def last(self):
        return self.events.get("e2e_end", self.events["end"])


class _Session:
    """Stream, events, flush buffer and graph of one measurement; close() frees them."""

    def __init__(self, rt, settings: dict, stream: int | None, device: int):
        self.rt, self.settings = rt, settings
        self.own_stream = stream is None
        self.stream = (check(rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking), "cudaStreamCreateWithFlags")
                       if stream is None else stream)
        flags = rt.cudaEventBlockingSync if settings["sync"] == "blocking" else rt.cudaEventDefault
        self.slots = [_Slot(rt, flags, settings["end_to_end"]) for _ in range(QUEUE_DEPTH)]
        self.flush_ptr, self.flush_bytes = None, 0
        if settings["l2_flush"]:
            l2 = check(rt.cudaDeviceGetAttribute(rt.cudaDeviceAttr.cudaDevAttrL2CacheSize, device), "L2 size query")
            self.flush_bytes = L2_FLUSH_FACTOR * int(l2)
            self.flush_ptr = check(rt.cudaMalloc(self.flush_bytes), "cudaMalloc (L2 flush buffer)")
        self.graph = self.graph_exec = None
        self.samples: list[float] = []
        self.e2e: list[float] = []
        self.host_ms: list[float] = []  # host time inside the enqueue call, per kept iteration

    def prepare(self, enqueue: Enqueue) -> Enqueue:
        if not self.settings["cuda_graph"]:
            return enqueue
        rt = self.rt
        if not self.stream:
            raise CudaError("CUDA graph capture needs a non-default stream; the backend passed stream 0")
        mode = rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        check(rt.cudaStreamBeginCapture(self.stream, mode), "cudaStreamBeginCapture")
        try:
            enqueue(self.stream)
        finally:
            # End the capture even if enqueue failed, or the stream stays unusable.
            err, graph = rt.cudaStreamEndCapture(self.stream)
        check((err,), "CUDA graph capture of the enqueue (set measure.cuda_graph: false if it cannot be captured)")
        self.graph = graph
        self.graph_exec = check(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        return lambda stream: check(rt.cudaGraphLaunch(self.graph_exec, stream), "cudaGraphLaunch")

    def iteration(self, index: int, launch: Enqueue, h2d, d2h, keep: bool) -> None:
        rt, slot = self.rt, self.slots[index % QUEUE_DEPTH]
        if slot.pending:
            self._collect(slot, keep)
        if self.flush_ptr is not None:
            check(rt.cudaMemsetAsync(self.flush_ptr, 0, self.flush_bytes, self.stream), "L2 flush memset")
        events = slot.events
        if "e2e_start" in events:
            self._record(events["e2e_start"])
            h2d(self.stream)
        self._record(events["start"])
        begin = time.perf_counter()
        launch(self.stream)
        if keep:
            self.host_ms.append((time.perf_counter() - begin) * 1000.0)
        self._record(events["end"])
        if "e2e_end" in events:
            d2h(self.stream)
            self._record(events["e2e_end"])
        slot.pending = True

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
        if self.flush_ptr is not None:
            rt.cudaFree(self.flush_ptr)
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


def _run(session: _Session, launch: Enqueue, h2d, d2h, until_ms: float, min_iterations: int, keep: bool) -> int:
    deadline = time.perf_counter() + until_ms / 1000.0
    index = 0
    while index < min_iterations or time.perf_counter() < deadline:
        session.iteration(index, launch, h2d, d2h, keep)
        index += 1
    session.drain(keep)
    return index


def measure_enqueue(enqueue: Enqueue, config: MeasureConfig, *, batch_size: int | None = None,
                    inputs_h2d: Enqueue | None = None, outputs_d2h: Enqueue | None = None,
                    stream: int | None = None, capture_graph: bool | None = None, device: int = 0,
                    telemetry: bool = True) -> TimingResult:
    """Time ``enqueue`` on the GPU; see the module docstring for the protocol.

    ``stream``: a CUDA stream handle (int) the backend must run on (torch's
    current stream), else the harness creates its own. ``device``: the CUDA
    ordinal in this process (0 in a pinned worker).
    """
    settings = resolve_settings(config, capture_graph=capture_graph,
                                has_copies=inputs_h2d is not None and outputs_d2h is not None)
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
    session = _Session(rt, settings, stream, device)
    try:
        launch = session.prepare(enqueue)
        warm = _run(session, launch, inputs_h2d, outputs_d2h, config.warmup_ms, 1, keep=False)
        free, total = check(rt.cudaMemGetInfo(), "cudaMemGetInfo")
        sampler = _sampler(uuid) if telemetry else None
        start = time.perf_counter()
        if sampler:
            sampler.start()
        try:
            _run(session, launch, inputs_h2d, outputs_d2h, config.duration_ms, config.iterations, keep=True)
        finally:
            if sampler:
                sampler.stop()
        elapsed_ms = (time.perf_counter() - start) * 1000.0
    finally:
        session.close()
    settings.update(stream="harness" if stream is None else "backend", warmup_iterations=warm,
                    measured_iterations=len(session.samples), measured_wall_ms=elapsed_ms, batch_size=batch_size,
                    device_uuid=uuid, device_name=_text(props.name), l2_flush_bytes=session.flush_bytes,
                    fallbacks=fallbacks,
                    # memory_mb is derived from these by the executor (one way for every backend)
                    device_used_mb=(total - free) / 2**20, harness_device_mb=session.flush_bytes / 2**20)
    result = TimingResult(samples_ms=session.samples, e2e_samples_ms=session.e2e, settings=settings,
                          flags=list(fallbacks))
    _flag_host_bound(result, session.host_ms, elapsed_ms)
    if sampler:
        from workers.telemetry import flags_for

        result.telemetry = sampler.summary()
        result.flags.extend(flags_for(result.telemetry))
    return result


def _flag_host_bound(result: TimingResult, host_ms: list[float], wall_ms: float) -> None:
    from workers.timing import host_bound

    summary = host_bound.summarize(result.samples_ms, host_ms, wall_ms)
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
