"""Find the devices of this host: the CPU always, NVIDIA GPUs through NVML
(pynvml) when a driver is present. NVML needs no CUDA context, so the
launcher can discover GPUs without claiming one."""

from __future__ import annotations

import hashlib
import os
import platform
from dataclasses import asdict, dataclass, field

from farm.devices import cpu_class, cpu_model, device_classes_matching, gpu_class, hostname
from farm.errors import UserError


@dataclass
class DiscoveredDevice:
    uuid: str
    kind: str
    name: str
    device_class: str
    host: str
    index: int | None = None
    compute_capability: str | None = None
    cpu_model: str | None = None
    memory_mb: int | None = None
    driver_version: str | None = None
    versions: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def worker_instance() -> str:
    """FARM_WORKER_INSTANCE, or one derived from FARM_HOME: two launchers on
    one host with their own FARM_HOME are two workers without any setting,
    and the same FARM_HOME gives the same name after every restart."""
    explicit = os.environ.get("FARM_WORKER_INSTANCE")
    if explicit:
        return explicit
    from farm.config import settings

    return "home-" + hashlib.sha256(str(settings().home).encode()).hexdigest()[:8]


def cpu_device() -> DiscoveredDevice:
    host = hostname()
    uuid = f"cpu-{host}-{worker_instance()}"
    total = None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)
    except (ValueError, OSError):
        pass
    return DiscoveredDevice(uuid=uuid, kind="cpu", name=cpu_model(), device_class=cpu_class(), host=host,
                            cpu_model=cpu_model(), memory_mb=total,
                            versions={"arch": platform.machine(), "cores": os.cpu_count()})


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def gpu_devices() -> list[DiscoveredDevice]:
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:
        return []  # no driver, no GPUs
    runtime = cuda_runtime_version()
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = _text(pynvml.nvmlDeviceGetName(handle))
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total // (1 << 20)
            devices.append(DiscoveredDevice(
                uuid=_text(pynvml.nvmlDeviceGetUUID(handle)), kind="gpu", name=name,
                device_class=gpu_class(name), host=hostname(), index=index,
                compute_capability=f"{major}.{minor}", memory_mb=int(memory), driver_version=driver,
                versions={"cuda_driver": f"{cuda // 1000}.{(cuda % 1000) // 10}", "cuda_runtime": runtime},
            ))
        return devices
    finally:
        pynvml.nvmlShutdown()


def cuda_runtime_version() -> str | None:
    """The CUDA runtime this worker's libraries load (cuda-python's cudart), "major.minor"."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        return None
    err, version = cudart.cudaRuntimeGetVersion()
    return f"{version // 1000}.{(version % 1000) // 10}" if int(err) == 0 else None


def with_environment(device: DiscoveredDevice) -> DiscoveredDevice:
    """Add what a worker for this device runs: its usable backends, their
    libraries' versions (and the ones results depend on, e.g. Triton), and
    plugins that fail to load. Every registration writes these, so device
    rows always say what the host's workers really run: `farm sweep status`
    reads the backends, reuse and `farm fetch` the versions."""
    from farm.backends import backend_errors, library_versions, local_backends

    backends = local_backends(device.kind)
    device.versions = {**device.versions, "backends": backends, "libraries": library_versions(backends),
                       "broken_backends": backend_errors()}
    return device


def discover() -> list[DiscoveredDevice]:
    return [with_environment(d) for d in (cpu_device(), *gpu_devices())]


def select_devices(devices: list[DiscoveredDevice], selector: str) -> list[DiscoveredDevice]:
    """The CLI's one device grammar (farm.cli.dialect), on this host's
    devices: ``all`` | ``cpu`` | ``gpu`` | a device class | a device's name
    or words of it (``H100``) | GPU indices ``0,1`` | GPU UUIDs,
    comma-separated (``any`` is the old name of ``all``)."""
    selector = selector.strip()
    gpus = [d for d in devices if d.kind == "gpu"]
    if selector.lower() in ("all", "any"):
        return devices
    if selector == "cpu":
        return [d for d in devices if d.kind == "cpu"]
    if selector == "gpu":
        if not gpus:
            raise UserError("no NVIDIA GPU found on this host (NVML reports none)")
        return gpus
    chosen = []
    for part in filter(None, (p.strip() for p in selector.split(","))):
        match = [d for d in gpus if part == str(d.index) or part == d.uuid]
        if part.lower() in ("all", "any"):
            match = list(devices)
        elif part in ("cpu", "gpu"):
            match = [d for d in devices if d.kind == part]
        elif not match and not part.isdigit():  # a device class or a device's name (a number is an index)
            classes = device_classes_matching([(d.device_class, d.name) for d in devices], part)
            match = [d for d in devices if d.device_class in classes]
        if not match:
            known = ", ".join(["cpu"] + [f"{d.index} ({d.uuid})" for d in gpus])
            raise UserError(f"--device {part!r} matches no device on this host (devices: {known})")
        chosen.extend(m for m in match if m not in chosen)
    return chosen
