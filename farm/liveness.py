"""Is a worker alive? Asked of the process itself where it can be.

A heartbeat is the only sign of life a worker on another host gives, so a
reconciler there judges it by its age (FARM_STALE_S, generous by default).
But a worker on *this* host can be looked at directly: its name carries its
pid (``farm-<tag>-<instance>-<pid>@<host>``) and its command line the device
it serves. On a loaded machine a live worker's heartbeat can come late (its
thread, or the database, waits for a core); declaring it dead then started
its job a second time while the first run went on (issue 24: 13 extra
attempts for 11 kills). A process that is there keeps its job however late
its heartbeat; one that is gone (or a zombie) lost it at once, without
waiting for the heartbeat to go stale.

A worker whose process is gone while its launcher still lives (the
launcher holds the device's host lock, workers/device_lock.py) is left to
that launcher, which hands the job back at once with the exit status; a
stopped process (SIGSTOP) makes no progress: both are judged by their
heartbeat like a remote one.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from farm.devices import hostname

_NAME = re.compile(r"-(\d+)@(.+)$")
_PROC = Path("/proc")


def lock_directory() -> Path:
    """Where launchers keep their per-device host locks (FARM_LOCK_DIR)."""
    default = Path(tempfile.gettempdir()) / f"engine-farm-locks-{os.getuid()}"
    return Path(os.environ.get("FARM_LOCK_DIR") or default)


def lock_file_name(device_uuid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", device_uuid) + ".lock"


def _launcher_gone(device_uuid: str) -> bool:
    """No process of this host holds the device's lock (False when unknown).

    Read from /proc/locks rather than by trying the lock: a probe that held
    it even for a moment could make a launcher starting then refuse the
    device as taken."""
    try:
        info = (lock_directory() / lock_file_name(device_uuid)).stat()
        locks = (_PROC / "locks").read_text()
    except OSError:
        return False  # another user's or another directory's launcher, or no /proc/locks: cannot tell
    for line in locks.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            major, minor, inode = fields[5].split(":")
            if (int(inode), int(major, 16), int(minor, 16)) == (info.st_ino, os.major(info.st_dev),
                                                                 os.minor(info.st_dev)):
                return False  # held: the launcher (or its worker) lives and hands the job back itself
        except ValueError:
            continue
    return True


def local_verdict(worker: str | None, device_uuid: str) -> bool | None:
    """True: ``worker`` runs on this host and its process lives; False: it
    ran on this host and its process is gone; None: cannot tell (another
    host, no /proc, a stopped process): judge by the heartbeat."""
    match = _NAME.search(worker or "")
    if not match or match.group(2) != hostname() or not _PROC.is_dir():
        return None
    pid = match.group(1)
    try:
        stat = (_PROC / pid / "stat").read_text()
        cmdline = (_PROC / pid / "cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return _gone(device_uuid)
    except OSError:
        return None
    state = stat.rsplit(")", 1)[-1].split()[0]
    if state in ("Z", "X", "x") or device_uuid.encode() not in cmdline:  # dead, or the pid is another's now
        return _gone(device_uuid)
    if state in ("T", "t"):
        return None
    return True


def _gone(device_uuid: str) -> bool | None:
    return False if _launcher_gone(device_uuid) else None
