"""``farm worker start``: one solo-pool worker process per selected device,
each pinned with CUDA_VISIBLE_DEVICES=<uuid> before anything imports CUDA,
supervised (a worker that dies is started again).

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

from farm.config import reconcile_s
from farm.queue import check_broker_url, check_time_limits
from workers.discovery import DiscoveredDevice, discover, select_devices
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


def spawn(device: DiscoveredDevice, loglevel: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "workers", "serve", "--uuid", device.uuid, "--loglevel", loglevel]
    return subprocess.Popen(command, env=child_env(device))


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def after_death(device: DiscoveredDevice, pid: int, code: int) -> None:
    """Hand a dead worker's job back now; a failure here is left to the
    periodic pass (the heartbeat goes stale anyway)."""
    from farm.reconcile import worker_exited

    name = worker_name(device, pid)
    try:
        release(device.uuid, name)
        report = worker_exited(name, describe_exit(code))
        if report.requeued or report.quarantined:
            log.warning("worker %s %s: requeued %s, quarantined %s", name, describe_exit(code),
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
                    log.warning("reconcile: requeued %s, quarantined %s, re-sent %s",
                                report.requeued, report.quarantined, report.resent)
            except Exception:  # broker or database down: try again next pass
                log.warning("reconcile pass failed", exc_info=True)


def start(selector: str = "all", loglevel: str = "INFO", once: bool = False) -> int:
    logging.basicConfig(level=loglevel, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    check_broker_url()  # one line now, not a crash loop of every worker process
    check_time_limits()  # refuse to start rather than let Redis redeliver running jobs
    devices = select_devices(discover(), selector)
    for device in devices:
        wait_free(device)
    children = {d.uuid: spawn(d, loglevel) for d in devices}
    stopping = threading.Event()

    def stop(signum, _frame):
        stopping.set()
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    loop = ReconcileLoop()
    loop.start()
    by_uuid = {d.uuid: d for d in devices}
    restart_delay = float(os.environ.get("FARM_RESTART_DELAY_S", "1"))
    while not stopping.wait(0.2):
        for uuid, child in list(children.items()):
            code = child.poll()
            if code is None or once:
                continue
            print(f"farm worker for {by_uuid[uuid].name} {describe_exit(code)}; restarting", file=sys.stderr)
            after_death(by_uuid[uuid], child.pid, code)
            if not stopping.wait(restart_delay):
                children[uuid] = spawn(by_uuid[uuid], loglevel)
        if once and all(c.poll() is not None for c in children.values()):
            break
    loop.stopped.set()
    deadline = time.time() + 30
    for uuid, child in children.items():
        try:
            child.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            after_death(by_uuid[uuid], child.pid, child.returncode)
    return 0
