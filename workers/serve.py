"""One worker process for one device: take its device row, heartbeat, and
consume that device class's queue with a solo pool (one job at a time, in
this process, on this device)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from farm.config import check_worker_settings, heartbeat_s
from farm.errors import EnvironmentFault, UserError
from farm.redact import mask
from farm.backends import backend_config
from farm.queue import check_time_limits
from farm.routing import build_queue, queue_for
from workers import runtime_state
from workers.backends.base import DeviceContext
from workers.discovery import discover
from workers.faults import EX_BROKEN, disk_full
from workers.registry import Heartbeat, release, take, worker_name


def _quiet_onnxruntime() -> None:
    # ONNX Runtime logs every unused initializer at WARNING; keep errors only.
    try:
        import onnxruntime

        onnxruntime.set_default_logger_severity(3)
    except ImportError:
        pass


def _environment_check(uuid: str) -> None:
    """A disk with no room, or a store that refuses this host: say so in
    one line and exit EX_BROKEN (not restarted) before taking any job."""
    import tempfile

    from farm.config import settings
    from farm.store import open_store

    cache = settings().home / "cache"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        why = disk_full([cache, Path(tempfile.gettempdir())])
    except OSError as exc:
        why = f"cannot create its cache {cache}: {exc.strerror or exc}"
    if why is None:
        try:
            open_store(patient=True).exists("0" * 64)  # refused credentials, a missing bucket
        except EnvironmentFault as exc:
            why = str(exc)
    if why:
        print(f"Error: worker for device {uuid} cannot take jobs: {mask(why)}", file=sys.stderr, flush=True)
        raise SystemExit(EX_BROKEN)


def serve(uuid: str, loglevel: str = "INFO", extra_queues: tuple[str, ...] = ()) -> None:
    try:
        check_worker_settings()
        check_time_limits()
    except UserError as exc:  # as it is, this worker can never start: its launcher must not restart it
        print(f"Error: {mask(exc)}", file=sys.stderr, flush=True)
        raise SystemExit(EX_BROKEN) from None
    _environment_check(uuid)
    device = next((d for d in discover() if d.uuid == uuid), None)
    if device is None:
        raise UserError(f"device {uuid} is not on this host")
    name = worker_name(device)
    backends = device.versions["backends"]  # discovery recorded what this host runs (workers/discovery.py)
    device_id = take(device, name)
    context = DeviceContext(kind=device.kind, name=device.name, device_class=device.device_class,
                            index=0 if device.kind == "gpu" else None,
                            compute_capability=device.compute_capability, uuid=device.uuid,
                            versions=device.versions, driver_version=device.driver_version)
    runtime_state.set_current(runtime_state.WorkerState(worker=name, device_id=device_id, device=context))
    heartbeat = Heartbeat(device_id, name, interval=heartbeat_s())
    heartbeat.start()
    logging.basicConfig(level=loglevel)
    _quiet_onnxruntime()
    from workers.tasks import app

    queues = [queue_for(device.device_class, backend) for backend in backends]
    # Device-independent builds (TensorRT-RTX) may be done by any worker.
    queues += [build_queue(b) for b in backends if backend_config(b).capabilities().build_anywhere]
    queues = ",".join(queues + list(extra_queues))
    try:
        app.worker_main(["worker", "--pool=solo", f"--queues={queues}", f"--hostname={name}",
                         f"--loglevel={loglevel}", "--without-mingle", "--without-gossip", "--task-events"])
    finally:
        heartbeat.stop()
        # A clean exit frees the device row at once, so the next worker for
        # it (e.g. the next 'farm run') need not wait for it to go stale.
        try:
            release(device.uuid, name)
        except Exception:
            logging.getLogger(__name__).warning("could not release device %s", device.uuid, exc_info=True)
        if runtime_state.current().broken:  # said why in one line (workers.tasks); not to be restarted
            raise SystemExit(EX_BROKEN)
