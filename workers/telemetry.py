"""GPU telemetry during a measurement, sampled through NVML (pynvml).

A ``Sampler`` thread reads SM and memory clocks, temperature, power,
utilisation, the clocks-event (throttle) reasons and the compute processes
on the measured GPU every ``interval_s``. ``summarize`` and ``flags_for``
are pure functions of the recorded samples, so the judgement (what counts as
throttling, who is a neighbour) is testable without a GPU.

NVML is addressed by the GPU's UUID: a pinned worker sees its GPU as CUDA
ordinal 0 while NVML, which ignores CUDA_VISIBLE_DEVICES, numbers all GPUs.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import dataclass, field

DEFAULT_INTERVAL_S = 0.05

# Clocks-event reasons by NVML name -> the flags they raise. Benign ones
# (an idle GPU, clocks set by the admin, sync boost, display) raise none:
# they are reported but are not the GPU slowing a busy kernel down.
REASON_FLAGS: dict[str, tuple[str, ...]] = {
    "GpuIdle": (),
    "ApplicationsClocksSetting": (),
    "SyncBoost": (),
    "DisplayClockSetting": (),
    "SwPowerCap": ("throttled-power",),
    "HwPowerBrakeSlowdown": ("throttled-power", "hw-slowdown"),
    "SwThermalSlowdown": ("throttled-thermal",),
    "HwThermalSlowdown": ("throttled-thermal", "hw-slowdown"),
    "HwSlowdown": ("hw-slowdown",),
}
NEIGHBOUR_FLAG = "neighbour-process"


@dataclass
class Sample:
    t: float
    sm_clock_mhz: int | None = None
    mem_clock_mhz: int | None = None
    temperature_c: int | None = None
    power_w: float | None = None
    gpu_util_pct: int | None = None
    reasons: int = 0
    pids: tuple[int, ...] = ()


@dataclass
class _Errors:
    seen: dict[str, str] = field(default_factory=dict)

    def call(self, what: str, function, *args):
        """NVML call that may be unsupported on this GPU: record once, go on."""
        try:
            return function(*args)
        except Exception as exc:  # pynvml raises NVMLError subclasses per code
            self.seen.setdefault(what, str(exc))
            return None


def reason_bits() -> dict[str, int]:
    """Reason name -> bit, read from pynvml (newer "ClocksEvent" names first)."""
    import pynvml

    bits = {}
    for name in REASON_FLAGS:
        value = getattr(pynvml, f"nvmlClocksEventReason{name}", None)
        if value is None:
            value = getattr(pynvml, f"nvmlClocksThrottleReason{name}", None)
        if value is not None:
            bits[name] = int(value)
    return bits


def decode_reasons(mask: int, bits: dict[str, int] | None = None) -> list[str]:
    """Names of the reasons set in ``mask``; unknown bits as ``unknown(0x..)``."""
    bits = reason_bits() if bits is None else bits
    names = [name for name, bit in bits.items() if mask & bit]
    rest = mask & ~sum(set(bits.values()))
    if rest:
        names.append(f"unknown({rest:#x})")
    return names


def neighbours(pid_sets: list[tuple[int, ...]], own_pids: set[int]) -> tuple[list[int], bool]:
    """(pids of other processes on the GPU, whether pids could be matched).

    If NVML never lists one of our pids while we hold a CUDA context, it sees
    another pid namespace (a container): pids can't be compared, so any
    sample with more than one process counts all of them as possible neighbours.
    """
    seen = set().union(*pid_sets) if pid_sets else set()
    if seen & own_pids:
        return sorted(seen - own_pids), True
    crowded = any(len(pids) > 1 for pids in pid_sets)
    return (sorted(seen) if crowded else []), False


def _spread(values) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def summarize(samples: list[Sample], own_pids: set[int], bits: dict[str, int] | None = None,
              errors: dict[str, str] | None = None) -> dict:
    """min/median/max per metric, reasons seen (share of samples), neighbours."""
    bits = reason_bits() if bits is None else bits
    counts: dict[str, int] = {}
    for sample in samples:
        for name in decode_reasons(sample.reasons, bits):
            counts[name] = counts.get(name, 0) + 1
    pids, matched = neighbours([s.pids for s in samples], own_pids)
    summary = {
        "available": True,
        "samples": len(samples),
        "span_s": round(samples[-1].t - samples[0].t, 3) if samples else 0.0,
        "clocks_event_reasons": {k: round(v / len(samples), 3) for k, v in sorted(counts.items())},
        "neighbour_pids": pids,
        "pids_matched": matched,
    }
    for metric in ("sm_clock_mhz", "mem_clock_mhz", "temperature_c", "power_w", "gpu_util_pct"):
        summary[metric] = _spread(getattr(s, metric) for s in samples)
    if errors:
        summary["errors"] = dict(errors)
    return summary


def flags_for(summary: dict) -> list[str]:
    """TimingResult flags from a summary: throttling seen, neighbours present."""
    if not summary.get("available"):
        return []
    flags: list[str] = []
    for name in summary.get("clocks_event_reasons", {}):
        for flag in REASON_FLAGS.get(name, ()):
            if flag not in flags:
                flags.append(flag)
    if summary.get("neighbour_pids"):
        flags.append(NEIGHBOUR_FLAG)
    return flags


def own_pids() -> set[int]:
    """This process and its descendants (compile helpers may hold contexts)."""
    pids = {os.getpid()}
    try:
        import psutil

        pids.update(child.pid for child in psutil.Process().children(recursive=True))
    except Exception:  # psutil missing or a child exited meanwhile: our pid alone
        pass
    return pids


class Sampler:
    """Samples one GPU (by UUID) from ``start()`` to ``stop()`` on a thread."""

    def __init__(self, uuid: str, interval_s: float = DEFAULT_INTERVAL_S):
        self.uuid, self.interval_s = uuid, interval_s
        self.samples: list[Sample] = []
        self.errors = _Errors()
        self.unavailable: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="farm-telemetry", daemon=True)
        self._handle = None

    def start(self) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByUUID(self.uuid)
        except Exception as exc:  # no NVML here: measure anyway, say why telemetry is missing
            self.unavailable = f"NVML unavailable: {exc}"
            return
        self._energy_mj = [self._energy_counter()]
        self.samples.append(self._read())
        self._thread.start()

    def stop(self) -> None:
        if self._handle is None:
            return
        self._stop.set()
        self._thread.join()
        self.samples.append(self._read())  # one after the last iteration, however short the run
        self._energy_mj.append(self._energy_counter())
        import pynvml

        pynvml.nvmlShutdown()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.samples.append(self._read())

    def _read(self) -> Sample:
        import pynvml

        call, h = self.errors.call, self._handle
        power = call("power", pynvml.nvmlDeviceGetPowerUsage, h)
        util = call("utilization", pynvml.nvmlDeviceGetUtilizationRates, h)
        procs = call("processes", pynvml.nvmlDeviceGetComputeRunningProcesses, h) or []
        reasons = call("clocks_event_reasons", _reasons_function(pynvml), h)
        return Sample(
            t=time.monotonic(),
            sm_clock_mhz=call("sm_clock", pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_SM),
            mem_clock_mhz=call("mem_clock", pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_MEM),
            temperature_c=call("temperature", pynvml.nvmlDeviceGetTemperature, h, pynvml.NVML_TEMPERATURE_GPU),
            power_w=power / 1000.0 if power is not None else None,
            gpu_util_pct=util.gpu if util is not None else None,
            reasons=int(reasons or 0),
            pids=tuple(sorted(p.pid for p in procs)),
        )

    def _energy_counter(self) -> int | None:
        import pynvml

        return self.errors.call("total_energy", pynvml.nvmlDeviceGetTotalEnergyConsumption, self._handle)

    def energy(self) -> dict:
        """The window's energy: NVML's total-energy counter (mJ) read at start
        and stop, else the power samples integrated (workers.energy)."""
        from workers.energy import COUNTER, INTEGRATED, integrate

        span = self.samples[-1].t - self.samples[0].t if len(self.samples) > 1 else 0.0
        first, last = (getattr(self, "_energy_mj", None) or [None, None])[0], getattr(self, "_energy_mj", [None])[-1]
        if first is not None and last is not None and len(self._energy_mj) == 2:
            return {"measured": True, "joules": (last - first) / 1000.0, "window_s": span, "source": COUNTER}
        power = [(s.t, s.power_w) for s in self.samples if s.power_w is not None]
        if len(power) < 2:
            return {"measured": False, "reason": "NVML gave neither its energy counter nor power readings"}
        return {"measured": True, "joules": integrate(power), "window_s": span, "source": INTEGRATED,
                "power_samples": len(power), "interval_s": self.interval_s}

    def summary(self) -> dict:
        if self.unavailable:
            return {"available": False, "reason": self.unavailable}
        result = summarize(self.samples, own_pids(), errors=self.errors.seen)
        result.update(interval_s=self.interval_s, nvml_uuid=self.uuid, energy=self.energy())
        return result

    def flags(self) -> list[str]:
        return flags_for(self.summary())


def _reasons_function(pynvml):
    return getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
        pynvml.nvmlDeviceGetCurrentClocksThrottleReasons
