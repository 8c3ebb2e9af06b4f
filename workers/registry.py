"""Device rows: registration at worker start and periodic heartbeats."""

from __future__ import annotations

import threading

from sqlalchemy import select, update

from farm.db import Device, session_scope, utcnow
from workers.discovery import DiscoveredDevice


def register(device: DiscoveredDevice, worker: str | None = None) -> int:
    with session_scope() as session:
        row = session.scalar(select(Device).where(Device.uuid == device.uuid))
        if row is None:
            row = Device(uuid=device.uuid)
            session.add(row)
        for key, value in device.to_json().items():
            if key != "uuid":
                setattr(row, key, value)
        row.worker = worker
        row.last_heartbeat = utcnow() if worker else row.last_heartbeat
        session.flush()
        return row.id


def beat(device_id: int, worker: str, current_job: str | None = None, clear_job: bool = False) -> None:
    values = {"last_heartbeat": utcnow(), "worker": worker}
    if current_job is not None or clear_job:
        values["current_job_id"] = current_job
    with session_scope() as session:
        session.execute(update(Device).where(Device.id == device_id).values(**values))


class Heartbeat(threading.Thread):
    """Marks the device alive every ``interval`` seconds until stopped."""

    def __init__(self, device_id: int, worker: str, interval: float = 10.0):
        super().__init__(name="farm-heartbeat", daemon=True)
        self.device_id, self.worker, self.interval = device_id, worker, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                beat(self.device_id, self.worker)
            except Exception:  # a database blip must not kill the worker
                continue

    def stop(self) -> None:
        self.stopped.set()
