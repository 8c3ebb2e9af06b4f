"""Which device classes a user's ``--device`` names.

Three tiers, the first that matches anything wins:
1. an exact device class or device name (any case);
2. whole words of a class or name: "A10" is the A10 and not the A100, "H100"
   is every H100 class (80GB HBM3, NVL, ...);
3. any part of a class or name.
"""

from __future__ import annotations

import re
from typing import Iterable

_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _has_run(words: list[str], run: list[str]) -> bool:
    return bool(run) and any(words[i:i + len(run)] == run for i in range(len(words) - len(run) + 1))


def device_classes_matching(pairs: Iterable[tuple[str, str | None]], device: str) -> set[str]:
    """Device classes named by ``device``; ``pairs`` are (device class, device name)."""
    needle = device.strip().lower()
    known = [(cls, name.lower() if isinstance(name, str) else "") for cls, name in pairs]
    run = _words(needle)
    tiers = (
        lambda cls, name: needle in (cls.lower(), name),
        lambda cls, name: _has_run(_words(cls), run) or _has_run(_words(name), run),
        lambda cls, name: needle in cls.lower() or needle in name,
    )
    for matches in tiers:
        chosen = {cls for cls, name in known if matches(cls, name)}
        if chosen:
            return chosen
    return set()
