"""A worker whose own environment is broken stops taking jobs.

A full disk, an artifact store that refuses this host's credentials (or
whose bucket is gone), a store that stays unreachable: every job this
worker takes would fail the same way, in a fraction of a second, and one
such worker drained the farm's queue into failures (14 of 16 jobs in one
round). So the job is not failed: it goes back to ``queued`` without
counting the attempt, its message back to the broker, and the worker says
why in one line and exits with EX_BROKEN; its launcher does not restart it.

A full disk often surfaces as something else (ONNX Runtime reading a
model cut short reports INVALID_PROTOBUF): a job that fails while the disk
under the worker's cache or work directory has almost no space left is
classified by that, never as a corrupt model.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from farm.errors import EnvironmentFault

EX_BROKEN = 78  # EX_CONFIG: a worker that must not be restarted as it is
LOW_SPACE_BYTES = 16 * 1024 * 1024  # below this a disk is full for any job
_DISK_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "the disk quota is exceeded",
                errno.EROFS: "the file system is read-only"}
_DISK_WORDS = ("no space left on device", "disk quota exceeded", "read-only file system")


class WorkerBroken(Exception):
    """This worker cannot run any job; str() is the one line naming why."""


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _full(directory: Path) -> str | None:
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return None
    if free < LOW_SPACE_BYTES:
        return f"no space left on the device of {directory} ({free // 1024} KiB free)"
    return None


def disk_full(directories: list[Path]) -> str | None:
    """Why the worker's disk cannot take a job, or None."""
    for directory in directories:
        found = _full(directory)
        if found:
            return found
    return None


def fault_of(exc: BaseException, directories: list[Path]) -> str | None:
    """The worker's own environment, not the job, made ``exc``: the reason
    in one line, or None when the job is to blame."""
    for link in _chain(exc):
        if isinstance(link, EnvironmentFault):
            return str(link)
        if isinstance(link, OSError) and link.errno in _DISK_ERRNOS:
            path = link.filename2 or link.filename  # a copy's destination is on the full disk
            where = f": {path}" if path else ""
            return f"{_DISK_ERRNOS[link.errno]}{where}"
        if any(word in str(link).lower() for word in _DISK_WORDS):
            return f"{str(link).strip().splitlines()[0][:300]}"
    return disk_full(directories)
