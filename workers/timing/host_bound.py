"""Is a GPU figure the GPU's, or the host's? (the ``host_bound`` flag)

The CUDA-event harness times each iteration on the GPU's clock, from the
start event to the end event. When the host cannot queue work as fast as
the GPU runs it (eager framework code launching many small kernels, a
Python call per op, a host sync inside the model) the GPU idles inside that
window waiting for the next launch, and the figure measures the host, not
the GPU. Two shares per measured run expose it:

- ``host_share``: the host's time inside the backend's enqueue call over
  the GPU time of the iteration (both means per iteration). A graph replay
  or a TensorRT enqueue of real work returns in microseconds, long before
  the GPU finishes: a small share. When the share nears 1 the GPU's window
  is paced by the host's launches (the event time is then about the host's
  enqueue time, whatever the kernels take).
- ``gpu_busy_share``: the summed event times over the wall time of the run.
  Each event window may still hold idle gaps inside an iteration, so this
  is an upper bound; well below 1, the GPU also waited for the host between
  iterations and batch / latency overstates the throughput a host sustains.

The run is flagged ``host_bound`` when the host share is above
``HOST_SHARE_LIMIT`` or the GPU idles between iterations for more than
``IDLE_SHARE_LIMIT`` of the wall time.

With N lanes (``measure.streams``) one host thread queues every lane in
turn, so a lane waits N enqueue calls between its launches: the host share
is N x the mean enqueue time over a lane's mean GPU time, and the busy
share is per lane (the summed event times over N x the wall time). With
one lane both are the single-stream figures.
"""

from __future__ import annotations

# Past half of the GPU window spent in the enqueue call, the host is what
# the next kernel waits for (at 1 the figure is the host's enqueue time).
HOST_SHARE_LIMIT = 0.5
# The GPU idle between iterations for more than half of the run.
IDLE_SHARE_LIMIT = 0.5
FLAG = "host_bound"


def summarize(gpu_ms: list[float], host_ms: list[float], wall_ms: float, lanes: int = 1) -> dict:
    """Per-iteration means and the two shares of one measured run over ``lanes`` lanes."""
    iterations = len(gpu_ms)
    if not iterations or not host_ms or wall_ms <= 0 or sum(gpu_ms) <= 0:
        return {"iterations": iterations, "lanes": lanes, "host_bound": False}
    gpu_mean, host_mean = sum(gpu_ms) / iterations, sum(host_ms) / len(host_ms)
    host_share = lanes * host_mean / gpu_mean
    busy_share = min(sum(gpu_ms) / (wall_ms * lanes), 1.0)
    bound = host_share > HOST_SHARE_LIMIT or busy_share < 1.0 - IDLE_SHARE_LIMIT
    return {
        "iterations": iterations,
        "lanes": lanes,
        "wall_ms_per_iteration": wall_ms / iterations,
        "gpu_ms_per_iteration": gpu_mean,
        "host_enqueue_ms_per_iteration": host_mean,
        "host_share": round(host_share, 4),
        "gpu_busy_share": round(busy_share, 4),
        "limits": {"host_share_max": HOST_SHARE_LIMIT, "gpu_busy_share_min": 1.0 - IDLE_SHARE_LIMIT},
        "host_bound": bound,
    }
