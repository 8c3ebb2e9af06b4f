"""``farm worker start``: one solo-pool worker process per selected device,
each pinned with CUDA_VISIBLE_DEVICES=<uuid> before anything imports CUDA,
supervised (a worker that dies is started again)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from workers.discovery import DiscoveredDevice, discover, select_devices
from workers.registry import register

RESTART_DELAY_S = 1.0


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


def start(selector: str = "all", loglevel: str = "INFO", once: bool = False) -> int:
    devices = select_devices(discover(), selector)
    for device in devices:
        register(device)
    children = {d.uuid: spawn(d, loglevel) for d in devices}
    stopping = False

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    by_uuid = {d.uuid: d for d in devices}
    while True:
        time.sleep(0.5)
        if stopping:
            break
        for uuid, child in list(children.items()):
            code = child.poll()
            if code is not None and not once:
                print(f"farm worker for {by_uuid[uuid].name} exited with {code}; restarting", file=sys.stderr)
                time.sleep(RESTART_DELAY_S)
                children[uuid] = spawn(by_uuid[uuid], loglevel)
        if once and all(c.poll() is not None for c in children.values()):
            break
    deadline = time.time() + 30
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            child.kill()
    return 0
