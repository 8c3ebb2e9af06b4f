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


def _implementation(name: str) -> type[Backend]:
    module_name, _, class_name = _config_class(name).implementation.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def load_backend(name: str, build_options: dict | None = None) -> Backend:
    config = _config_class(name).from_dict(build_options or {})
    return _implementation(name)(config)


def classify_failure(name: str, exc: BaseException, precision: str) -> str | None:
    """``unsupported`` reason for ``exc`` as backend ``name`` classifies it
    (Backend.classify), or None: a failure."""
    try:
        cls = _implementation(name)
    except Exception:  # the backend itself does not load: that is the failure to report
        return None
    return cls.classify(exc, precision)
