"""``farm worker start``: one solo-pool worker process per selected device,
each pinned with CUDA_VISIBLE_DEVICES=<uuid> before anything imports CUDA,
supervised (a worker that dies is started again).

It stops like a container's main process: the first SIGTERM or SIGINT is a
warm shutdown (each worker finishes its current job, then the launcher exits
0), a second signal or the end of FARM_SHUTDOWN_GRACE_S a cold one (workers
killed, their jobs handed back at once, exit 1). As PID 1 it also reaps
orphans, and it never leaves a process behind.

The launcher also keeps the farm honest: when one of its workers dies it
hands that worker's running job back at once (farm.reconcile.worker_exited),
and every FARM_RECONCILE_S it runs a full reconcile pass, which recovers
jobs of workers on other hosts whose heartbeats went stale and re-sends
messages the broker lost. Passes are idempotent, so every launcher runs one.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

from farm.config import check_worker_settings, reconcile_s, restart_delay_s, shutdown_grace_s
from farm.queue import check_broker_url, check_time_limits
from workers.discovery import DiscoveredDevice, discover, select_devices
from workers.device_lock import DeviceLock
from workers.faults import EX_BROKEN
from workers.registry import release, wait_free, worker_name

log = logging.getLogger("farm.launcher")


def child_env(device: DiscoveredDevice) -> dict[str, str]:
    env = dict(os.environ)
    env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    # GPU workers see exactly their GPU; CPU workers see none, so a CPU job
    # can never touch (or be disturbed by) a GPU another worker is timing.
    env["CUDA_VISIBLE_DEVICES"] = device.uuid if device.kind == "gpu" else ""
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def spawn(device: DiscoveredDevice, loglevel: str, lock: DeviceLock) -> subprocess.Popen:
    command = [sys.executable, "-m", "workers", "serve", "--uuid", device.uuid, "--loglevel", loglevel]
    # The worker inherits the device lock: it stays held while the worker
    # lives, even if this launcher is killed.
    assert lock.fd is not None
    return subprocess.Popen(command, env=child_env(device), pass_fds=(lock.fd,))


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def after_death(device: DiscoveredDevice, pid: int, code: int, why: str | None = None) -> None:
    """Hand a dead worker's job back now; a failure here is left to the
    periodic pass (the heartbeat goes stale anyway)."""
    from farm.reconcile import worker_exited

    name, why = worker_name(device, pid), why or describe_exit(code)
    try:
        release(device.uuid, name)
        report = worker_exited(name, why)
        if report.requeued or report.quarantined:
            log.warning("worker %s %s: requeued %s, quarantined %s", name, why,
                        report.requeued, report.quarantined)
    except Exception:
        log.exception("could not recover the jobs of %s", name)


class ReconcileLoop(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="farm-reconcile", daemon=True)
        self.stopped = threading.Event()

    def run(self) -> None:
        from farm.reconcile import reconcile

        while not self.stopped.wait(reconcile_s()):
            try:
                report = reconcile()
                if report:
                    log.warning("reconcile: requeued %s, quarantined %s, re-sent %s, sent never-sent %s",
                                report.requeued, report.quarantined, report.resent, report.unsent)
            except Exception:  # broker or database down: try again next pass
                log.warning("reconcile pass failed", exc_info=True)


class Signals:
    """SIGTERM/SIGINT as a container runtime sends them: the first asks for
    a warm shutdown, a second one (or the end of the grace period) for a
    cold one."""

    def __init__(self) -> None:
        self.count, self.first_at = 0, None  # type: int, float | None
        self.event = threading.Event()

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum, _frame) -> None:
        self.count += 1
        self.first_at = self.first_at or time.monotonic()
        self.event.set()


def _become_subreaper() -> None:
    """Orphans of our workers become our children (as they would if we were
    PID 1), so the launcher can reap them and end them at shutdown."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _own_children() -> list[int]:
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                found.append(int(entry))
    return found


def end_leftovers() -> None:
    """Kill and reap whatever is still our child (what a worker started and
    left behind): nothing of the launcher's tree outlives it."""
    if not os.path.isdir("/proc"):
        return
    for pid in _own_children():
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def reap_orphans(children) -> None:
    """Reap orphans that became our children (as subreaper, or as PID 1 of
    a container), leaving our own workers to Popen.poll."""
    ours, seen = {child.pid: child for child in children}, set()
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid in seen:
            return  # nothing exited, or a worker Popen.poll could not reap just now
        seen.add(info.si_pid)
        if info.si_pid in ours:
            ours[info.si_pid].poll()  # reaps it, keeping its exit code
        else:
            os.waitpid(info.si_pid, 0)


def _stop(children: dict, by_uuid: dict, signals: Signals) -> int:
    """Warm: every worker finishes its current job and exits. Cold (a second
    signal, or FARM_SHUTDOWN_GRACE_S passed): the workers are killed and their
    jobs handed back at once for another worker to run."""
    grace = shutdown_grace_s()
    print(f"farm worker: warm shutdown, letting current jobs finish (up to {grace:.0f} s, "
          f"FARM_SHUTDOWN_GRACE_S); a second signal stops at once", file=sys.stderr, flush=True)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = (signals.first_at or time.monotonic()) + grace
    cold = False
    while any(child.poll() is None for child in children.values()):
        if signals.count >= 2 or time.monotonic() >= deadline:
            cold = True
            why = "a second signal" if signals.count >= 2 else f"the {grace:.0f} s grace period ended"
            print(f"farm worker: cold shutdown ({why}): stopping the workers, their jobs go back to the queue",
                  file=sys.stderr, flush=True)
            for child in children.values():
                if child.poll() is None:
                    child.kill()
            break
        reap_orphans(list(children.values()))
        signals.event.wait(0.1)
        signals.event.clear()
    for uuid, child in children.items():
        child.wait()
        if child.returncode != 0:
            after_death(by_uuid[uuid], child.pid, child.returncode,
                        "was stopped by a cold shutdown of its launcher" if cold else None)
    end_leftovers()
    return 1 if cold else 0


def start(selector: str = "all", loglevel: str = "INFO", once: bool = False) -> int:
    logging.basicConfig(level=loglevel, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    signals = Signals()
    signals.install()  # before anything slow: a container may be stopped while it starts
    check_worker_settings()  # every FARM_* knob, one line now: no restart loop, no worker left behind
    check_broker_url()  # one line now, not a crash loop of every worker process
    check_time_limits()  # refuse to start rather than let Redis redeliver running jobs
    devices = select_devices(discover(), selector)
    locks = {d.uuid: DeviceLock(d.uuid).acquire() for d in devices}
    for device in devices:
        wait_free(device, locked_here=True)
    if signals.count:
        return 0
    _become_subreaper()
    children = {d.uuid: spawn(d, loglevel, locks[d.uuid]) for d in devices}
    try:
        return _supervise(children, devices, loglevel, locks, signals, once)
    except BaseException:
        # A launcher that fails must not leave a worker taking jobs behind it.
        for uuid, child in children.items():
            if child.poll() is None:
                child.kill()
                child.wait()
                after_death(next(d for d in devices if d.uuid == uuid), child.pid, child.returncode,
                            "was stopped because its launcher failed")
        end_leftovers()
        raise


def _supervise(children: dict, devices: list, loglevel: str, locks: dict, signals: Signals, once: bool) -> int:
    loop = ReconcileLoop()
    loop.start()
    by_uuid, broken = {d.uuid: d for d in devices}, set()  # type: dict, set[str]
    restart_delay = restart_delay_s()
    while not signals.event.wait(0.2):
        reap_orphans(list(children.values()))
        for uuid, child in list(children.items()):
            code = child.poll()
            if code is None or once or uuid in broken:
                continue
            if code == EX_BROKEN:
                # The worker said why on stderr (one line) and handed its job back;
                # restarting it would only fail the same way.
                after_death(by_uuid[uuid], child.pid, code)
                broken.add(uuid)
                continue
            print(f"farm worker for {by_uuid[uuid].name} {describe_exit(code)}; restarting", file=sys.stderr)
            after_death(by_uuid[uuid], child.pid, code)
            if not signals.event.wait(restart_delay):
                children[uuid] = spawn(by_uuid[uuid], loglevel, locks[uuid])
        if broken and len(broken) == len(children):
            loop.stopped.set()
            end_leftovers()
            return 1
        if once and all(c.poll() is not None for c in children.values()):
            break
    loop.stopped.set()
    if not signals.count:  # --once: every worker exited by itself
        return 0
    return _stop(children, by_uuid, signals)
