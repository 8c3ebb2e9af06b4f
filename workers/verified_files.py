"""Cached files are used only after their bytes match a recorded hash.

A worker's cache (FARM_HOME/cache: fetched models, normalised copies,
precision-converted models, timing caches, user data) is a plain directory
anyone on the host can edit. Before a job uses a cached file, its sha256 must
match the hash recorded for it (the store key, the artifacts table, or the
record written beside a derivative when it was made); on a mismatch the
caller fetches or rebuilds it.

Hashing a large model per job would cost seconds, so a file checked once is
remembered with its stat signature (size, inode, mtime and ctime, which no
write can leave unchanged); any change to the file makes it hashed again.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from farm.store.base import hash_file

log = logging.getLogger(__name__)
_checked: dict[str, tuple[tuple[int, ...], str]] = {}


def _signature(path: Path) -> tuple[int, ...] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def matches(path: Path, sha256: str | None) -> bool:
    """True when ``path`` exists and its content hashes to ``sha256``."""
    signature = _signature(path)
    if signature is None or not sha256:
        return False
    if _checked.get(str(path)) == (signature, sha256):
        return True
    actual = hash_file(path)
    if actual != sha256:
        _checked.pop(str(path), None)
        log.warning("cached file %s was changed (hashes to %s, recorded %s); not using it", path, actual, sha256)
        return False
    _checked[str(path)] = (signature, sha256)
    return True


def record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def write_record(path: Path, sha256: str, **facts) -> None:
    """Record the hash ``path`` has (or is about to have: write the record
    before moving the file in place, so no reader sees a file without one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        json.dump({"sha256": sha256, **facts}, out)
    os.replace(temp, record_path(path))


def recorded(path: Path, **facts) -> str | None:
    """The hash recorded for ``path`` if the record also states ``facts``."""
    try:
        record = json.loads(record_path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or any(record.get(k) != v for k, v in facts.items()):
        return None
    sha = record.get("sha256")
    return sha if isinstance(sha, str) else None


def intact(path: Path, **facts) -> bool:
    """``path`` matches its own record (made from ``facts``)."""
    return matches(path, recorded(path, **facts))
