"""One small package per backend: ``config.py`` (knobs, registered as an
entry point) and ``backend.py`` (the implementation, imported lazily)."""

from __future__ import annotations

import importlib

from farm.backends import backend_config
from workers.backends.base import Backend


def load_backend(name: str, build_options: dict | None = None) -> Backend:
    config_cls = backend_config(name)
    config = config_cls.from_dict(build_options or {})
    module_name, _, class_name = config_cls.implementation.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(config)
