"""Local workers for ``farm run``: spawned as ``python -m workers`` so the
coordinator process never imports device code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from farm.config import ensure_home
from farm.errors import UserError

STOP_GRACE_S = 40  # the sweep finished: let workers shut down cleanly
INTERRUPT_GRACE_S = 2  # Ctrl-C: the user is waiting


def register_local_devices() -> list[dict]:
    result = subprocess.run([sys.executable, "-m", "workers", "discover", "--register"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        message = (result.stderr.strip().splitlines() or ["device discovery failed"])[-1]
        raise UserError(message.removeprefix("Error: "))
    return json.loads(result.stdout)


class LocalWorkers:
    """Context manager: start workers for ``selector``, stop them on exit."""

    def __init__(self, selector: str):
        self.selector = selector
        self.process: subprocess.Popen | None = None
        self.log_path = ensure_home() / "logs" / "worker.log"

    def __enter__(self) -> "LocalWorkers":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workers", "start", "--device", self.selector, "--loglevel", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ), start_new_session=True,
        )
        log.close()
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __exit__(self, exc_type, *exc) -> None:
        if not self.process or self.process.poll() is not None:
            return
        # Ctrl-C: stop now. The running job is abandoned (its worker is
        # killed after a short grace), the queue keeps the rest for resume.
        grace = STOP_GRACE_S
        if exc_type is KeyboardInterrupt:
            print("interrupted: stopping the local workers", file=sys.stderr, flush=True)
            grace = INTERRUPT_GRACE_S
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def wait_for_sweep(sweep_id: str, workers: LocalWorkers, progress) -> dict:
    """Poll until every job is final; ``progress.update(status, running)``
    on each poll."""
    from farm.service import running_jobs, sweep_status

    while True:
        status = sweep_status(sweep_id)
        progress.update(status, running_jobs(sweep_id))
        if status["settled"] == status["total"]:  # built engines may wait for a GPU this host lacks
            return status
        if not workers.alive():
            raise UserError(f"the local workers stopped unexpectedly; see {workers.log_path}")
        time.sleep(0.3)
