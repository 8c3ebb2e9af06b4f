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
import json
import os
import time
from pathlib import Path

from farm.errors import UserError
from farm.liveness import lock_directory, lock_file_name

COMMAND_CHARS = 120  # of the holder's command line, in the refusal

REFUSE_AFTER_S = 0.5  # a holder that is just exiting gets this long to let go


def lock_dir() -> Path:
    path = lock_directory()
    path.mkdir(parents=True, exist_ok=True)
    return path


class DeviceLock:
    def __init__(self, device_uuid: str):
        self.uuid = device_uuid
        self.path = lock_dir() / lock_file_name(device_uuid)
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
                    holder = describe_holder(os.pread(fd, 4096, 0).decode(errors="replace"))
                    os.close(fd)
                    raise UserError(f"device {self.uuid} is already served by a live worker on this host: "
                                    f"{holder}; stop that one first (a CPU worker may instead get a "
                                    f"FARM_HOME or FARM_WORKER_INSTANCE of its own)") from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder_record().encode(), 0)
        os.set_inheritable(fd, True)  # worker processes keep holding it
        self.fd = fd
        return self


def holder_record() -> str:
    """What a refused launcher is told about this one: pid, since when, command."""
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return json.dumps({"pid": os.getpid(), "since": since, "command": _command(os.getpid())})


def describe_holder(text: str) -> str:
    """'launcher pid N (command), since T' from the lock file (a bare pid: an older launcher's)."""
    try:
        record = json.loads(text)
    except ValueError:
        record = {"pid": text.strip() or "?"}
    if not isinstance(record, dict):
        record = {"pid": str(record)}
    pid = record.get("pid", "?")
    command = record.get("command") or (_command(int(pid)) if str(pid).isdigit() else None)
    since = record.get("since") or (_started(int(pid)) if str(pid).isdigit() else None)
    line = f"launcher pid {pid}"
    if command:
        line += f" ({command[:COMMAND_CHARS]})"
    if since:
        line += f", since {since}"
    return line


def _command(pid: int) -> str | None:
    try:
        raw = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        return None
    text = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    return " ".join(text.split()) or None  # one line, whatever the arguments hold


def _started(pid: int) -> str | None:
    """The process's start time, from /proc (boot time + its start in clock ticks)."""
    try:
        ticks = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime"))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(boot + ticks / os.sysconf("SC_CLK_TCK")))
