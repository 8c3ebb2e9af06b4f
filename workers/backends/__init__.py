"""One small package per backend: ``config.py`` (knobs, registered as an
entry point) and ``backend.py`` (the implementation, imported lazily)."""

from __future__ import annotations

import functools
import importlib

from farm.backends import backend_config
from workers.backends.base import Backend


@functools.lru_cache(maxsize=None)
def _config_class(name: str):
    # Entry points are read once per worker process (scanning every
    # installed distribution costs milliseconds a job otherwise).
    return backend_config(name)


def load_backend(name: str, build_options: dict | None = None) -> Backend:
    config_cls = _config_class(name)
    config = config_cls.from_dict(build_options or {})
    module_name, _, class_name = config_cls.implementation.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(config)
