"""Device classes and selectors (pure Python: no device libraries).

A device class names interchangeable devices and is also the Celery queue
that feeds them: ``gpu.nvidia-h100-80gb-hbm3``, ``cpu.x86_64.amd-epyc-7b13``.
"""

from __future__ import annotations

import platform
import re
import socket
from functools import lru_cache
from typing import Iterable

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


# --device and spec selectors: three tiers, the first that matches anything wins.
# 1. an exact device class or device name (any case);
# 2. whole words of a class or name: "A10" is the A10 and not the A100, "H100"
#    is every H100 class (80GB HBM3, NVL, ...);
# 3. any part of a class or name.
_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _has_run(words: list[str], run: list[str]) -> bool:
    return bool(run) and any(words[i:i + len(run)] == run for i in range(len(words) - len(run) + 1))


def device_classes_matching(pairs: Iterable[tuple[str, str | None]], device: str) -> set[str]:
    """Device classes named by ``device``; ``pairs`` are (device class, device name)."""
    needle = device.strip().lower()
    known = [(cls, name.lower() if isinstance(name, str) else "") for cls, name in pairs]
    run, part = _words(needle), slug(needle)
    tiers = (
        lambda cls, name: needle in (cls.lower(), name),
        lambda cls, name: _has_run(_words(cls), run) or _has_run(_words(name), run),
        lambda cls, name: bool(part) and (part in slug(cls) or part in slug(name)),
    )
    for matches in tiers:
        chosen = {cls for cls, name in known if matches(cls, name)}
        if chosen:
            return chosen
    return set()


def registered_classes(session, host: str | None = None) -> dict[str, str]:
    """device class -> a device name, for devices workers have registered."""
    query = select(Device.device_class, Device.name)
    if host:
        query = query.where(Device.host == host)
    return {cls: name for cls, name in session.execute(query)}


def resolve_device_classes(selectors, session, host: str | None = None) -> list[str]:
    """Turn a spec's ``devices`` selector into device classes.

    ``all`` (or its old name ``any``: every registered class, or this host's
    CPU if none), ``cpu``,
    ``gpu``, an exact class (``gpu.nvidia-l4``: allowed before any worker
    of it exists; its jobs wait for one), or a device's name or part of it
    (``H100``; see device_classes_matching).
    """
    known = registered_classes(session, host)
    resolved: list[str] = []
    for selector in selectors:
        text = str(selector).strip()
        lowered = text.lower()
        if lowered in ("all", "any"):
            matches = sorted(known) or [cpu_class()]
        elif lowered == "cpu":
            matches = sorted(c for c in known if c.startswith("cpu.")) or [cpu_class()]
        elif lowered == "gpu":
            matches = sorted(c for c in known if c.startswith("gpu."))
        elif lowered.startswith(("cpu.", "gpu.")):
            matches = [lowered]
        else:
            matches = sorted(device_classes_matching(known.items(), text))
        if not matches:
            seen = ", ".join(sorted(known)) or "none registered yet"
            raise SpecError(
                f"spec field 'devices': no device matches {text!r} (known: {seen}); name a device class "
                f"such as gpu.nvidia-l4 to queue jobs for devices not seen yet"
            )
        resolved.extend(m for m in matches if m not in resolved)
    return resolved


# Compute capability of a GPU class from its name (whole words of the class),
# for decisions at submit before any worker of the class registered.
# Registered devices report their own (devices.compute_capability).
_CC_BY_WORD = {
    **dict.fromkeys(("h100", "h200", "h800", "h20", "gh200"), "9.0"),
    **dict.fromkeys(("b100", "b200", "gb200"), "10.0"),
    **dict.fromkeys(("a100", "a800", "a30"), "8.0"),
    **dict.fromkeys(("a10", "a10g", "a16", "a2", "a40", "a4000", "a4500", "a5000", "a6000", "3050", "3060", "3070",
                     "3080", "3090"), "8.6"),
    **dict.fromkeys(("l4", "l20", "l40", "l40s", "4060", "4070", "4080", "4090", "ada"), "8.9"),
    **dict.fromkeys(("t4", "2060", "2070", "2080", "turing"), "7.5"),
    **dict.fromkeys(("5060", "5070", "5080", "5090"), "12.0"),
    "v100": "7.0", "p100": "6.0",
}


def class_compute_capability(device_class: str) -> str | None:
    """The compute capability a GPU class's name implies, or None (unknown)."""
    if not device_class.startswith("gpu."):
        return None
    for word in _words(device_class[len("gpu."):]):
        if word in _CC_BY_WORD:
            return _CC_BY_WORD[word]
    return None
