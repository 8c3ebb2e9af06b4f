"""Which queue a job waits in (light: no Celery import, usable anywhere).

Jobs wait in one queue per (device class, backend): a worker consumes the
queues of the backends installed on its host, so a tensorrt job waits for a
worker that has TensorRT instead of failing on one without.

Backends whose builds need no GPU (``build_anywhere``, e.g. TensorRT-RTX)
first go to a build queue (``build.<backend>``) that every worker with the
backend consumes, CPU workers included; the finished build then waits in
the target device class's queue for measurement. Full TensorRT builds on
the target device class itself.
"""

from __future__ import annotations


def queue_for(device_class: str, backend: str) -> str:
    return f"{device_class}.{backend}"


def build_queue(backend: str) -> str:
    return f"build.{backend}"


def builds_elsewhere(backend: str, device_class: str) -> bool:
    """Is this job's build done by any worker before measurement on a GPU?"""
    from farm.backends import backend_config

    try:
        config = backend_config(backend)
    except Exception:  # a backend this host does not know: route to its device
        return False
    return config.build_anywhere and device_class.startswith("gpu.")


def job_queue(device_class: str, backend: str, built: bool) -> str:
    if not built and builds_elsewhere(backend, device_class):
        return build_queue(backend)
    return queue_for(device_class, backend)
