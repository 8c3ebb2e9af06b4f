"""Queue naming (light: no Celery import, usable anywhere)."""

from __future__ import annotations


def queue_for(device_class: str, backend: str) -> str:
    """Jobs wait in one queue per (device class, backend). A worker consumes
    the queues of the backends installed on its host, so a tensorrt job
    waits for a worker that has TensorRT instead of failing on one without."""
    return f"{device_class}.{backend}"
