"""Device rows: registration at worker start and periodic heartbeats.

A device row is held by at most one live worker. Worker names carry the
process id, so a restarted worker is a new identity and the reconciler can
tell its predecessor's jobs are orphaned. Heartbeats are guarded by the
worker name: a worker that finds its row taken over stops (its running job,
if any, was handed to another worker and its result would be discarded).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import timedelta

from sqlalchemy import select, update

from farm.config import stale_s
from farm.db import Device, session_scope
from farm.db.clock import db_now
from farm.errors import UserError
from workers.discovery import DiscoveredDevice, worker_instance

log = logging.getLogger(__name__)


def worker_name(device: DiscoveredDevice, pid: int | None = None) -> str:
    tag = "cpu" if device.kind == "cpu" else f"gpu{device.index}"
    return f"farm-{tag}-{worker_instance()}-{pid or os.getpid()}@{device.host}"


def _describe(row: Device, device: DiscoveredDevice) -> None:
    for key, value in device.to_json().items():
        if key != "uuid":
            setattr(row, key, value)


def register(device: DiscoveredDevice) -> int:
    """Create or refresh the device's descriptive fields; never touches
    which worker holds it (a second launcher must not evict a live worker)."""
    with session_scope() as session:
        row = session.scalar(select(Device).where(Device.uuid == device.uuid))
        if row is None:
            row = Device(uuid=device.uuid)
            session.add(row)
        _describe(row, device)
        session.flush()
        return row.id


def _try_take(device: DiscoveredDevice, worker: str) -> int | None:
    device_id = register(device)
    with session_scope() as session:
        now = db_now(session)
        cutoff = now - timedelta(seconds=stale_s())
        row = session.get(Device, device_id)
        holder_alive = row.worker and row.last_heartbeat and row.last_heartbeat >= cutoff
        if holder_alive and row.worker != worker:
            return None
        # Compare-and-set on the previous holder: two workers starting at
        # once for one row cannot both win.
        same_holder = Device.worker.is_(None) if row.worker is None else Device.worker == row.worker
        taken = session.execute(update(Device).where(Device.id == row.id, same_holder)
                                .values(worker=worker, current_job_id=None, last_heartbeat=now))
        return row.id if taken.rowcount == 1 else None


def _wait(attempt, device: DiscoveredDevice):
    deadline = time.monotonic() + stale_s() + 1
    while True:
        result = attempt()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise UserError(f"device {device.uuid} is already served by a live worker; set "
                            f"FARM_WORKER_INSTANCE to run several workers for one device on a host")
        time.sleep(0.5)


def take(device: DiscoveredDevice, worker: str) -> int:
    """Become the device's worker. Waits out a predecessor's heartbeat (a
    killed launcher's worker goes stale); refuses a live one."""
    return _wait(lambda: _try_take(device, worker), device)


def wait_free(device: DiscoveredDevice, locked_here: bool = False) -> None:
    """For a launcher: refuse to start a second worker for a live device.

    ``locked_here``: this launcher holds the device's host lock
    (workers.device_lock), so a worker of this host that still looks alive
    is dead; its row is freed at once instead of waiting for it to go stale."""

    def free():
        device_id = register(device)
        with session_scope() as session:
            cutoff = db_now(session) - timedelta(seconds=stale_s())
            row = session.get(Device, device_id)
            alive = row.worker and row.last_heartbeat and row.last_heartbeat >= cutoff
            holder = row.worker
        if alive and locked_here and holder.endswith(f"@{device.host}"):
            release(device.uuid, holder)
            return device_id
        return None if alive else device_id

    _wait(free, device)


def release(device_uuid: str, worker: str) -> None:
    """Mark a dead worker's device row silent (the launcher saw it exit)."""
    with session_scope() as session:
        session.execute(update(Device).where(Device.uuid == device_uuid, Device.worker == worker)
                        .values(last_heartbeat=None))


def beat(device_id: int, worker: str, current_job: str | None = None, clear_job: bool = False) -> bool:
    """Refresh the heartbeat; False when another worker holds the row."""
    values = {}
    if current_job is not None or clear_job:
        values["current_job_id"] = current_job
    with session_scope() as session:
        values["last_heartbeat"] = db_now(session)
        result = session.execute(update(Device).where(Device.id == device_id, Device.worker == worker)
                                 .values(**values))
        return result.rowcount == 1


class Heartbeat(threading.Thread):
    """Marks the device alive every ``interval`` seconds until stopped.

    Stops the worker (SIGTERM to this process: a warm shutdown) when the
    launcher that started it is gone or another worker took the row over.
    """

    def __init__(self, device_id: int, worker: str, interval: float = 10.0):
        super().__init__(name="farm-heartbeat", daemon=True)
        self.device_id, self.worker, self.interval = device_id, worker, interval
        self.parent = os.getppid()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            if os.getppid() != self.parent:
                self._quit("its launcher exited")
                return
            try:
                held = beat(self.device_id, self.worker)
            except Exception:  # a database blip must not kill the worker
                log.warning("heartbeat failed", exc_info=True)
                continue
            if not held:
                self._quit("another worker took its device over")
                return

    def _quit(self, why: str) -> None:
        log.error("worker %s stopping: %s", self.worker, why)
        os.kill(os.getpid(), signal.SIGTERM)

    def stop(self) -> None:
        self.stopped.set()
