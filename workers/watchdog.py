"""Hard time limits for a job in a solo-pool worker.

Celery's time limits need a pool with child processes; a solo worker runs
the job in its own main thread, often inside C code (a TensorRT build, an
ORT session) that no signal or exception can interrupt. So the limit is
enforced from outside the job: a timer thread that, when the phase's limit
passes, records the job as failed with the reason (a guarded update) and
ends the process with os._exit. The launcher restarts the worker; nothing
can wedge it, and the job is never retried for a timeout.

Phases: ``build`` (from the claim until the backend's build returns) and
``measure`` (loading, accuracy and timing), limited by the spec's
``timeouts.build_s`` / ``timeouts.measure_s`` or FARM_BUILD_TIMEOUT_S /
FARM_MEASURE_TIMEOUT_S.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable

log = logging.getLogger(__name__)
EXIT_TIMEOUT = 75  # the launcher logs it; the job is already marked failed
_GIVE_UP_S = 30.0  # exit even if recording the failure hangs

_active: "Watchdog | None" = None


class Watchdog:
    def __init__(self, limits: dict[str, float], on_expire: Callable[[str], None]):
        self.limits, self.on_expire = limits, on_expire
        self.lock = threading.Lock()
        self.timer: threading.Timer | None = None
        self.done = False

    def phase(self, name: str) -> None:
        """Start ``name``'s clock (stopping the previous phase's)."""
        limit = float(self.limits[f"{name}_s"])
        with self.lock:
            if self.timer:
                self.timer.cancel()
            self.timer = threading.Timer(limit, self._expire, (name, limit))
            self.timer.daemon = True
            self.timer.start()

    def stop(self) -> None:
        with self.lock:
            self.done = True
            if self.timer:
                self.timer.cancel()

    def _expire(self, name: str, limit: float) -> None:
        with self.lock:  # stop() cannot slip in: the job has not finished
            if self.done:
                return
            killer = threading.Timer(_GIVE_UP_S, os._exit, (EXIT_TIMEOUT,))
            killer.daemon = True
            killer.start()
            reason = f"timed out: the {name} took longer than timeouts.{name}_s = {limit:g} s"
            log.error("%s; stopping this worker (the launcher starts a new one)", reason)
            try:
                self.on_expire(reason)
            except Exception:
                log.exception("could not record the timeout")
            finally:
                logging.shutdown()
                os._exit(EXIT_TIMEOUT)

    def __enter__(self) -> "Watchdog":
        global _active
        _active = self
        self.phase("build")
        return self

    def __exit__(self, *exc) -> None:
        global _active
        self.stop()
        _active = None


class _GuardedBackend:
    """Switches the active watchdog to the measure phase when the backend
    starts loading its artifact; everything else passes through."""

    def __init__(self, backend):
        self._backend = backend

    def load(self, *args, **kwargs):
        if _active is not None:
            _active.phase("measure")
        return self._backend.load(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._backend, name)


def guard(backend):
    return _GuardedBackend(backend)
