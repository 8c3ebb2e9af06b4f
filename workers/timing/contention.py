"""Host contention during a CPU measurement (issue 22, finding 7).

A CPU figure is the host's as much as the model's when other processes
take its cores: the same configuration measured 95.0 vs 8.8 ms in two runs
on a shared host while each run's own interval was narrow. What is stored
with every CPU measurement (``telemetry.host_load``):

- ``load_1m`` before and after, and ``cpus`` (the host's online CPUs);
- ``steal_fraction``: the host's CPU time stolen by the hypervisor during
  the measured window (/proc/stat ``steal`` over all CPU time);
- ``wait_ratio``: the measuring process's run-queue wait over its on-CPU
  time during the window, summed over its threads (/proc/<pid>/task/*/
  schedstat). 0 on a quiet host; 1.0 means its threads waited as long for a
  CPU as they ran, so the figure can be up to twice the uncontended one.

The figure is flagged ``host_contended`` when ``wait_ratio`` exceeds the
worker setting ``ENGINE_FARM_CONTENDED_WAIT_RATIO`` (default 1.0; ``inf``
turns the flag off) or ``steal_fraction`` exceeds 0.10. Like ``host_bound``,
a flagged figure never wins ``farm best`` unless ``--allow-host-bound``
(farm/reports/eligibility.py), and the reason is printed. (The variable is
not FARM_-prefixed: the test suite, on a 2-core machine at load 3-8, sets it
to ``inf`` for tests about other things, and its subprocess helpers drop
FARM_* variables.)
"""

from __future__ import annotations

import math
import os

FLAG = "host_contended"
DEFAULT_WAIT_RATIO = 1.0
MAX_STEAL = 0.10


def _read(path: str, size: int = 4096) -> bytes:
    # os.open/os.read, not open(): two snapshots bracket every measurement, and a text-mode
    # file object per /proc file cost more than the figures are worth on a tiny job.
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def _cpu_times() -> tuple[int, int] | None:
    try:
        fields = _read("/proc/stat", 512).split(b"\n", 1)[0].split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields]
    steal = values[7] if len(values) > 7 else 0
    return sum(values[:8]), steal


def _schedstat() -> tuple[int, int] | None:
    """Time on a CPU and time waiting in a run queue, summed over this process's threads."""
    run = wait = 0
    try:
        threads = os.listdir("/proc/self/task")
    except OSError:
        return None
    for tid in threads:
        try:
            on_cpu, queued, _ = _read(f"/proc/self/task/{tid}/schedstat", 128).split()
        except (OSError, ValueError):
            continue  # a thread that ended between the listing and the read
        run += int(on_cpu)
        wait += int(queued)
    return (run, wait) if threads else None


def snapshot() -> dict:
    return {"load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None, "cpu": _cpu_times(),
            "sched": _schedstat()}


def limit() -> float:
    raw = os.environ.get("ENGINE_FARM_CONTENDED_WAIT_RATIO")
    try:
        return float(raw) if raw else DEFAULT_WAIT_RATIO
    except ValueError:
        return DEFAULT_WAIT_RATIO


def assess(before: dict, after: dict) -> dict:
    """The ``host_load`` record of a measured window and whether it is contended."""
    record: dict = {"load_1m_before": before["load"], "load_1m_after": after["load"], "cpus": os.cpu_count(),
                    "steal_fraction": None, "wait_ratio": None}
    if before["cpu"] and after["cpu"]:
        total = after["cpu"][0] - before["cpu"][0]
        record["steal_fraction"] = round((after["cpu"][1] - before["cpu"][1]) / total, 4) if total > 0 else 0.0
    if before["sched"] and after["sched"]:
        ran = after["sched"][0] - before["sched"][0]
        waited = after["sched"][1] - before["sched"][1]
        record["wait_ratio"] = round(waited / ran, 3) if ran > 0 else None
    bound = limit()
    record["wait_ratio_limit"] = None if math.isinf(bound) else bound
    record["contended"] = bool(
        (record["wait_ratio"] is not None and record["wait_ratio"] > bound)
        or (record["steal_fraction"] is not None and record["steal_fraction"] > MAX_STEAL and not math.isinf(bound)))
    return record
