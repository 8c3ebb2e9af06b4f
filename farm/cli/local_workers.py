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


class Stopped(KeyboardInterrupt):
    """``farm run`` was told to stop by a signal other than Ctrl-C (SIGTERM
    from ``timeout``, a CI runner or ``kill``; SIGHUP from a closed
    terminal): handled as Ctrl-C is, so the local workers are stopped."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signal_name = signal.Signals(signum).name


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _raise_stopped(signum, _frame) -> None:
    raise Stopped(signum)


def _die_with_parent() -> None:
    """In the launcher, before exec: SIGTERM it (a warm stop of its workers)
    when ``farm run`` dies, even by SIGKILL, which no handler sees."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class LocalWorkers:
    """Context manager: start workers for ``selector``, stop them on exit,
    also when ``farm run`` is stopped by SIGTERM or SIGHUP (or dies)."""

    def __init__(self, selector: str):
        self.selector = selector
        self.process: subprocess.Popen | None = None
        self.log_path = ensure_home() / "logs" / "worker.log"
        self.log_start = 0
        self.previous: dict = {}

    def __enter__(self) -> "LocalWorkers":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.log_start = log.seek(0, os.SEEK_END)
        # Before the launcher exists: a stop signal from here on ends it too.
        self.previous = {s: signal.signal(s, _raise_stopped) for s in STOP_SIGNALS}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "workers", "start", "--device", self.selector, "--loglevel", "WARNING"],
                stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ), start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        except BaseException:
            self._restore_signals()
            raise
        finally:
            log.close()
        return self

    def alive(self) -> bool:
        return self.process is not None and not self._exited()

    def _exited(self) -> bool:
        """Has the launcher ended? Asked without reaping it: while it is a
        zombie its pid, the id of its process group, cannot be reused, so
        the group can be killed safely until _stop reaps it."""
        if self.process.returncode is not None:
            return True
        try:
            return os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return self.process.poll() is not None

    def _wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._exited():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def failure(self) -> str:
        """Why the workers ended: the launcher's own ``Error:`` line (a held
        device names its holder), else where its log is."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self.log_start)
                lines = log.read(1 << 20).decode(errors="replace").splitlines()
        except OSError:
            lines = []
        errors = [line[len("Error: "):] for line in lines if line.startswith("Error: ")]
        if errors:
            return f"the local workers could not start: {errors[-1]}"
        return f"the local workers stopped unexpectedly; see {self.log_path}"

    def __exit__(self, exc_type, *exc) -> None:
        try:
            self._stop(exc_type)
        finally:
            self._restore_signals()

    def _restore_signals(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}

    def _stop(self, exc_type) -> None:
        if not self.process or self.process.returncode is not None:
            return
        try:
            if not self._exited():
                # Ctrl-C, SIGTERM, SIGHUP: stop now. The running job is abandoned
                # (its worker is killed after a short grace), the queue keeps the rest for resume.
                grace = STOP_GRACE_S
                if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
                    print("interrupted: stopping the local workers", file=sys.stderr, flush=True)
                    grace = INTERRUPT_GRACE_S
                self.process.send_signal(signal.SIGTERM)
                self._wait_exit(grace)
        except KeyboardInterrupt:
            pass  # a second stop signal: the kill below
        finally:
            # The launcher, and whatever of its process group outlived it (killed
            # before it could stop its workers): nothing of it holds the device.
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
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
            raise UserError(workers.failure())
        time.sleep(0.3)
