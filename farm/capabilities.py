"""What one backend can do, decided in one place (light: no device imports).

Every backend has exactly one ``Capabilities`` (``BackendConfig.capabilities()``).
Its ``supports(job, device)`` answers, for submit (device None: the job's own
device class), routing and workers (a device): can this job be done, and
which phase runs there:

- ``run``: build (unless already built elsewhere), check accuracy, measure —
  on a device of the job's class;
- ``build``: only build and store the engine, then hand the job to its class
  (backends whose builds need no device of the target class, e.g.
  TensorRT-RTX building for a GPU class on any worker).

``environment(device)`` says which versions make a result valid: a finished
result is reused only where the devices of its class report the same
environment (docs/fields.md, "Reuse").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BUILD, RUN = "build", "run"


@dataclass(frozen=True)
class Support:
    ok: bool
    phase: str | None = None  # BUILD | RUN when ok
    reason: str | None = None  # why not, one line


@dataclass(frozen=True)
class Capabilities:
    backend: str
    precisions: tuple[str, ...]
    device_kinds: tuple[str, ...]  # device kinds it measures on
    build_anywhere: bool  # builds need no device of the target class
    libraries: tuple[tuple[str, str], ...]  # (name, distributions "a|b") whose versions a result depends on
    version_parts: int = 3  # leading version components that must be equal
    compute_capabilities: tuple[str, ...] = ()  # GPU targets ("8.9", "12.x"); () = any
    precision_min_cc: tuple[tuple[str, str], ...] = ()  # (precision, lowest compute capability with its kernels)
    multi_stream: bool = False  # measures several streams at once (measure.streams > 1)

    def builds_elsewhere(self, device_class: str) -> bool:
        """Is a job for ``device_class`` built by any worker, before measurement?"""
        return self.build_anywhere and device_class.startswith("gpu.")

    def supports(self, job: Any, device: Any = None) -> Support:
        """``job``: has precision, device_class and optionally build (a job row
        or plan). ``device``: has kind and device_class (a worker's device), or
        None for "a device of the job's class"."""
        if job.precision not in self.precisions:
            return Support(False, reason=f"{self.backend} cannot build {job.precision}; it supports "
                                         f"{', '.join(self.precisions)}")
        if (why := self.refuses_streams(job)):
            return Support(False, reason=why)
        target_kind = job.device_class.split(".", 1)[0]
        if target_kind not in self.device_kinds:
            return Support(False, reason=f"{self.backend} runs on {', '.join(self.device_kinds)}, not on "
                                         f"{job.device_class}")
        why = self.refuses_class(job.device_class) or self.refuses_precision_on(job.precision, job.device_class)
        if why:
            return Support(False, reason=why)
        built = getattr(job, "build", None) is not None
        build_first = self.builds_elsewhere(job.device_class) and not built
        if device is None or device.device_class == job.device_class:
            why = device is not None and (self.refuses_class(job.device_class, device)
                                          or self.refuses_precision_on(job.precision, job.device_class, device))
            if why:
                return Support(False, reason=why)
            return Support(True, phase=BUILD if build_first and device is None else RUN)
        if build_first:
            return Support(True, phase=BUILD)
        return Support(False, reason=f"this worker serves {device.device_class}; the job needs a device of "
                                     f"{job.device_class}")

    def refuses_streams(self, job: Any) -> str | None:
        """Why the job's ``measure.streams`` cannot be measured by this backend (one stream only)."""
        streams = int(((getattr(job, "config", None) or {}).get("measure") or {}).get("streams") or 1)
        if streams > 1 and not self.multi_stream:
            return f"measure.streams is {streams}, but the {self.backend} runner measures one stream only"
        return None

    def refuses_class(self, device_class: str, device: Any = None) -> str | None:
        """Why no device of ``device_class`` (or ``device``) can run this
        backend's engines, from its compute capability; None when it can or
        the capability is unknown (the worker checks it then)."""
        cc = self._compute_capability(device_class, device)
        if cc and self.compute_capabilities and not any(_cc_matches(cc, t) for t in self.compute_capabilities):
            where = device.device_class if device is not None else device_class
            return (f"{self.backend} cannot target {where} (compute capability {cc}); it targets compute "
                    f"capabilities {', '.join(self.compute_capabilities)}")
        return None

    def refuses_precision_on(self, precision: str, device_class: str, device: Any = None) -> str | None:
        """Why ``precision`` has no kernels on the class (per-precision gates, e.g. fp8 from 8.9 on)."""
        lowest = dict(self.precision_min_cc).get(precision)
        cc = self._compute_capability(device_class, device) if lowest else None
        if cc and _cc_tuple(cc) < _cc_tuple(lowest):
            where = device.device_class if device is not None else device_class
            return (f"{self.backend} has no {precision} kernels for {where} (compute capability {cc}); "
                    f"{precision} needs compute capability {lowest} or newer")
        return None

    @staticmethod
    def _compute_capability(device_class: str, device: Any = None) -> str | None:
        """The device's own compute capability, else what its class's GPU name implies."""
        if device is not None and getattr(device, "compute_capability", None):
            return str(device.compute_capability)
        from farm.devices import class_compute_capability

        return class_compute_capability(device.device_class if device is not None else device_class)

    def environment(self, device: dict) -> dict[str, str | None]:
        """What a result of this backend depends on, from a device's registered
        row (``versions`` with ``libraries``, ``cuda_runtime``; ``kind``,
        ``driver_version``): each library's version cut to ``version_parts``
        components, and on GPUs the CUDA runtime (major.minor) and the
        driver's major version."""
        versions = device.get("versions") or {}
        libraries = versions.get("libraries") or {}
        env: dict[str, str | None] = {}
        for name, _ in self.libraries:
            env[name] = _cut(libraries.get(name), self.version_parts)
        if device.get("kind") == "gpu":
            env["cuda_runtime"] = _cut(versions.get("cuda_runtime"), 2)
            env["driver"] = _cut(device.get("driver_version"), 1)
        return env


def _cc_tuple(cc: str) -> tuple[int, ...]:
    return tuple(int(p) for p in str(cc).split(".") if p.isdigit())


def _cc_matches(cc: str, target: str) -> bool:
    """``target`` "8.9" is exactly 8.9; "12.x" is any 12 minor."""
    major, _, minor = str(target).partition(".")
    have = str(cc).split(".")
    return have[0] == major and (minor == "x" or (len(have) > 1 and have[1] == minor))


def _cut(version: str | None, parts: int) -> str | None:
    if not version or version == "unknown":
        return None
    return ".".join(str(version).split(".")[:parts])


def describe(env: dict | None) -> str:
    """``onnxruntime 1.32.0, cuda_runtime 12.8`` (unknown values as '?')."""
    if not env:
        return "no recorded environment"
    return ", ".join(f"{k} {v or '?'}" for k, v in sorted(env.items()))
