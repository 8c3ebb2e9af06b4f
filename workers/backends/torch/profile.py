"""torch's per-layer table (the counterpart of TensorRT's IProfiler run) and
its timing lanes.

Layer profile: ``torch.profiler`` with CUDA activity around a few calls of
the compiled model, run directly (no CUDA graph, like trtexec's separate
profile run), one row per GPU kernel / memcpy name with its time per
iteration (workers.timing.layers).

Timing (``measure.streams`` N, 1 included): one lane per stream, each a
replica of the compiled call with its own inputs, pinned host copies and
CUDA graph (one graph cannot be replayed concurrently with itself), timed
by the one harness (workers.timing.cuda). Lane 0 is the call itself.
"""

from __future__ import annotations

from typing import Any, Iterable

from farm.spec import MeasureConfig
from workers.backends.base import TimingResult

PROFILE_ITERATIONS = 20


def per_iteration_times(events: Iterable[tuple[str, float, float]], iterations: int) -> dict[str, list[float]]:
    """(name, start_us, duration_us) of every kernel over ``iterations``
    identical calls -> name -> its summed time (ms) in each call, in order
    of first launch. A kernel launched k times per call has k x iterations
    events; they are split in launch order into ``iterations`` groups."""
    by_name: dict[str, list[tuple[float, float]]] = {}
    for name, start, duration in sorted(events, key=lambda e: e[1]):
        by_name.setdefault(name, []).append((start, duration))
    table = {}
    for name, launches in by_name.items():
        per_call, extra = divmod(len(launches), iterations)
        if per_call == 0 or extra:
            # Not launched the same number of times in every call (a
            # one-off autotune or allocation kernel): its mean per call.
            table[name] = [sum(d for _, d in launches) / 1000.0 / iterations] * iterations
            continue
        table[name] = [sum(d for _, d in launches[i * per_call:(i + 1) * per_call]) / 1000.0
                       for i in range(iterations)]
    return table


def kernel_events(prof: Any) -> list[tuple[str, float, float]]:
    """GPU-side events of a finished torch.profiler run as (name, start_us, duration_us)."""
    from torch.autograd import DeviceType

    out = []
    for event in prof.events():
        if event.device_type == DeviceType.CUDA:
            start, end = event.time_range.start, event.time_range.end
            out.append((event.name, float(start), float(end - start)))
    return out


def profile_layers(call: Any, iterations: int = PROFILE_ITERATIONS) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from workers.timing.layers import layer_table

    with torch.no_grad():
        call.compiled(*call.inputs)  # warm, outside the profile
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(iterations):
                call.compiled(*call.inputs)
            torch.cuda.synchronize()
    events = kernel_events(prof)
    details = {name: {"type": "memcpy" if name.startswith("Memcpy") else
                      "memset" if name.startswith("Memset") else "kernel"} for name, _, _ in events}
    return layer_table(per_iteration_times(events, iterations), details, source="torch.profiler (CUDA kernels)",
                       iterations=iterations, settings={"cuda_graph": False, "torch": torch.__version__,
                                                        "rows": "one per kernel name"})


def measure_lanes(call: Any, config: MeasureConfig, batch_size: int, device: int) -> TimingResult:
    """Time ``config.streams`` replicas of ``call`` concurrently, one stream each."""
    import torch

    from workers.backends.torch.backend import StaticCall
    from workers.timing.cuda import measure_lanes as run_lanes

    graphed = call.graph is not None
    replicas = [call] + [StaticCall(call.compiled, [t.clone() for t in call.inputs], graph=graphed)
                         for _ in range(config.streams - 1)]
    streams = [torch.cuda.Stream() for _ in replicas]
    torch.cuda.synchronize()
    try:
        # torch captures its own graphs (its allocator must see the capture), so the harness does not.
        result = run_lanes([_lane(r, s) for r, s in zip(replicas, streams)], config, batch_size=batch_size,
                           capture_graph=False, device=device)
    finally:
        for replica in replicas[1:]:
            replica.close()
    result.settings.update(cuda_graph=graphed, cuda_graph_by="one torch.cuda.CUDAGraph per stream" if graphed
                           else None, replicas="the compiled call with its own inputs per stream")
    return result


def _lane(replica: Any, stream: Any):
    """A replica on its stream, with pinned host copies of its inputs and outputs (end-to-end timing)."""
    import torch

    from workers.timing.cuda import Lane

    staged_in = [t.cpu().pin_memory() for t in replica.inputs]
    staged_out = [torch.empty_like(o, device="cpu").pin_memory() for o in replica.outputs]

    def enqueue(_handle: int) -> None:
        with torch.cuda.stream(stream):
            replica()

    def h2d(_handle: int) -> None:
        with torch.cuda.stream(stream):
            for device, host in zip(replica.inputs, staged_in):
                device.copy_(host, non_blocking=True)

    def d2h(_handle: int) -> None:
        with torch.cuda.stream(stream):
            for host, device in zip(staged_out, replica.outputs):
                host.copy_(device, non_blocking=True)

    return Lane(enqueue, stream.cuda_stream, h2d, d2h)
