"""Device classes and selectors (pure Python: no device libraries).

A device class names interchangeable devices and is also the Celery queue
that feeds them: ``gpu.nvidia-h100-80gb-hbm3``, ``cpu.x86_64.amd-epyc-7b13``.
"""

from __future__ import annotations

import platform
import re
import socket
from functools import lru_cache

from sqlalchemy import select

from farm.db import Device
from farm.errors import SpecError


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def gpu_class(name: str) -> str:
    return f"gpu.{slug(name)}"


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown-cpu"


def cpu_class(model: str | None = None, arch: str | None = None) -> str:
    model = slug(model or cpu_model())[:60].strip("-")
    return f"cpu.{arch or platform.machine()}.{model}"


def hostname() -> str:
    return socket.gethostname()


def registered_classes(session, host: str | None = None) -> dict[str, str]:
    """device class -> a device name, for devices workers have registered."""
    query = select(Device.device_class, Device.name)
    if host:
        query = query.where(Device.host == host)
    return {cls: name for cls, name in session.execute(query)}


def resolve_device_classes(selectors, session, host: str | None = None) -> list[str]:
    """Turn a spec's ``devices`` selector into device classes.

    ``any`` (every registered class, or this host's CPU if none), ``cpu``,
    ``gpu``, an exact class (``gpu.nvidia-l4``: allowed before any worker
    of it exists; its jobs wait for one), or part of a GPU's name (``H100``).
    """
    known = registered_classes(session, host)
    resolved: list[str] = []
    for selector in selectors:
        text = str(selector).strip()
        lowered = text.lower()
        if lowered == "any":
            matches = sorted(known) or [cpu_class()]
        elif lowered == "cpu":
            matches = sorted(c for c in known if c.startswith("cpu.")) or [cpu_class()]
        elif lowered == "gpu":
            matches = sorted(c for c in known if c.startswith("gpu."))
        elif lowered.startswith(("cpu.", "gpu.")):
            matches = [lowered]
        else:
            needle = slug(text)
            matches = sorted(c for c, name in known.items() if needle and (needle in c or needle in slug(name)))
        if not matches:
            seen = ", ".join(sorted(known)) or "none registered yet"
            raise SpecError(
                f"spec field 'devices': no device matches {text!r} (known: {seen}); name a device class "
                f"such as gpu.nvidia-l4 to queue jobs for devices not seen yet"
            )
        resolved.extend(m for m in matches if m not in resolved)
    return resolved
