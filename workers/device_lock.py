"""One live worker per device on a host, known at once: the launcher holds
an exclusive flock on a per-device file (in a host-wide directory) and its
worker processes inherit the descriptor, so the lock is held exactly while
any process of that worker tree lives and is gone the moment they all die.

A second launcher for the same device on the same host is therefore told
within seconds (not after a heartbeat goes stale), and a launcher that finds
the lock free knows a fresh heartbeat from this host is a dead worker's.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
import time
from pathlib import Path

from farm.errors import UserError

REFUSE_AFTER_S = 0.5  # a holder that is just exiting gets this long to let go


def lock_dir() -> Path:
    default = Path(tempfile.gettempdir()) / f"engine-farm-locks-{os.getuid()}"
    path = Path(os.environ.get("FARM_LOCK_DIR") or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


class DeviceLock:
    def __init__(self, device_uuid: str):
        self.uuid = device_uuid
        self.path = lock_dir() / (re.sub(r"[^A-Za-z0-9_.-]", "_", device_uuid) + ".lock")
        self.fd: int | None = None

    def acquire(self) -> "DeviceLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + REFUSE_AFTER_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                    os.close(fd)
                    raise UserError(f"device {self.uuid} is already served by a live worker on this host "
                                    f"(launcher pid {holder}); stop that one first (a CPU worker may instead get a "
                                    f"FARM_HOME or FARM_WORKER_INSTANCE of its own)") from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        os.set_inheritable(fd, True)  # worker processes keep holding it
        self.fd = fd
        return self
