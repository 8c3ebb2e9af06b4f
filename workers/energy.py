"""Energy of a measured window, from NVML.

``nvmlDeviceGetTotalEnergyConsumption`` is a millijoule counter since the
driver loaded (Volta and newer): a window's energy is the difference of two
readings. Where it is missing the meter integrates power samples
(``nvmlDeviceGetPowerUsage``, mW) over the window instead, by the trapezoid
rule, and says so in ``source``. On a CPU worker nothing is measured and
the reading says why: energy is never reported as 0 for "unknown".

NVML is addressed by the GPU's UUID (it ignores CUDA_VISIBLE_DEVICES).
"""

from __future__ import annotations

import threading
import time

COUNTER = "nvml total-energy counter"
INTEGRATED = "integrated nvml power samples"
NOT_MEASURED = {"measured": False, "reason": "energy is not measured on CPU workers (no NVML device)"}
SAMPLE_INTERVAL_S = 0.02


def integrate(samples: list[tuple[float, float]]) -> float:
    """Joules from (monotonic s, watts) samples, trapezoid rule."""
    return sum((t1 - t0) * (w0 + w1) / 2.0 for (t0, w0), (t1, w1) in zip(samples, samples[1:]))


def per_inference(reading: dict | None, inferences: int) -> dict:
    """A window's reading -> joules per inference and inferences per joule."""
    if not reading or not reading.get("measured"):
        return dict(reading or NOT_MEASURED)
    joules = reading["joules"]
    out = dict(reading, inferences=inferences)
    out["joules_per_inference"] = joules / inferences if inferences else None
    out["inferences_per_joule"] = inferences / joules if joules > 0 else None
    out["mean_power_w"] = joules / reading["window_s"] if reading["window_s"] > 0 else None
    return out


class EnergyMeter:
    """``start()`` / ``stop()`` around a window; ``reading()`` afterwards."""

    def __init__(self, uuid: str | None):
        self.uuid = uuid
        self._handle = None
        self._why_not: str | None = None if uuid else NOT_MEASURED["reason"]
        self._start_mj: int | None = None
        self._end_mj: int | None = None
        self._samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = self._t1 = 0.0

    def start(self) -> None:
        if self.uuid is None:
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByUUID(self.uuid)
        except Exception as exc:  # no NVML here: the run goes on, the reading says why
            self._why_not = f"NVML unavailable: {exc}"
            return
        self._start_mj = self._counter()
        if self._start_mj is None:  # no counter on this GPU: sample power
            self._thread = threading.Thread(target=self._loop, name="farm-energy", daemon=True)
            self._samples.append((time.monotonic(), self._power()))
            self._thread.start()
        self._t0 = time.monotonic()

    def stop(self) -> None:
        if self._handle is None:
            return
        self._t1 = time.monotonic()
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._samples.append((time.monotonic(), self._power()))
        else:
            self._end_mj = self._counter()
        import pynvml

        pynvml.nvmlShutdown()

    def reading(self) -> dict:
        if self._handle is None:
            return {"measured": False, "reason": self._why_not or NOT_MEASURED["reason"]}
        window = self._t1 - self._t0
        if self._thread is None and self._start_mj is not None and self._end_mj is not None:
            return {"measured": True, "joules": (self._end_mj - self._start_mj) / 1000.0, "window_s": window,
                    "source": COUNTER}
        samples = [(t, w) for t, w in self._samples if w is not None]
        if len(samples) < 2:
            return {"measured": False, "reason": "neither NVML's energy counter nor its power reading answered"}
        return {"measured": True, "joules": integrate(samples), "window_s": window, "source": INTEGRATED,
                "power_samples": len(samples), "interval_s": SAMPLE_INTERVAL_S}

    def _counter(self) -> int | None:
        import pynvml

        try:
            return int(pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except Exception:  # NVMLError_NotSupported on pre-Volta GPUs and some vGPUs
            return None

    def _power(self) -> float | None:
        import pynvml

        try:
            return pynvml.nvmlDeviceGetPowerUsage(self._handle) / 1000.0
        except Exception:
            return None

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self._samples.append((time.monotonic(), self._power()))

    def __enter__(self) -> "EnergyMeter":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
