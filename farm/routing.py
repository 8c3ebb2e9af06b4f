"""Where a job's message goes and which phase it asks for — decided here
only (light: no Celery import, usable anywhere).

Jobs wait in one queue per (device class, backend): a worker consumes the
queues of the backends installed on its host, so a tensorrt job waits for a
worker that has TensorRT instead of failing on one without.

Backends whose builds need no GPU (capabilities ``build_anywhere``, e.g.
TensorRT-RTX) first go to a build queue (``build.<backend>``) that every
worker with the backend consumes, CPU workers included, with phase
``build``; the finished build (status ``built``) then waits in the target
device class's queue with phase ``run``. Full TensorRT builds on the target
device class itself. The phase travels in the message; the worker does not
decide it again.
"""

from __future__ import annotations

from dataclasses import dataclass

from farm.capabilities import BUILD, RUN


RUN_FINALS = "engine_farm.run_finals"  # the finals task (workers/finals.py); sent by farm/search/finals.py


@dataclass(frozen=True)
class Route:
    queue: str
    phase: str  # BUILD | RUN


def queue_for(device_class: str, backend: str) -> str:
    return f"{device_class}.{backend}"


def build_queue(backend: str) -> str:
    return f"build.{backend}"


def route(job) -> Route:
    """The queue and phase of a job (a row or plan with backend, precision,
    device_class and build)."""
    from farm.backends import backend_config

    try:
        support = backend_config(job.backend).capabilities().supports(job)
    except Exception:  # a backend this host does not know: route to its device
        support = None
    if support is not None and support.ok and support.phase == BUILD:
        return Route(build_queue(job.backend), BUILD)
    return Route(queue_for(job.device_class, job.backend), RUN)


def needs(job) -> tuple[str, str]:
    """(device class, backend) a waiting job needs a live worker for; a build
    any worker may do needs only the backend."""
    r = route(job)
    return ("any device (build)" if r.phase == BUILD else job.device_class, job.backend)
