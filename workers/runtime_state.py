"""Which device this worker process serves (set once at start)."""

from __future__ import annotations

from dataclasses import dataclass

from workers.backends.base import DeviceContext


@dataclass
class WorkerState:
    worker: str
    device_id: int
    device: DeviceContext
    broken: str | None = None  # why this worker stopped taking jobs (workers.faults)


_state: WorkerState | None = None


def set_current(state: WorkerState) -> None:
    global _state
    _state = state


def current() -> WorkerState:
    if _state is None:
        raise RuntimeError("this process is not a farm worker (workers.serve sets the device)")
    return _state
