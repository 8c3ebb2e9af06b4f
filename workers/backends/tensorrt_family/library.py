"""Import the flavor's module and give it a logger that keeps messages, so
failures are reported with TensorRT's own words instead of a bare None."""

from __future__ import annotations

import importlib
from typing import Any

from farm.errors import BackendUnsupported
from workers.backends.tensorrt_family.capabilities import Flavor

_LOGGERS: dict[str, Any] = {}


def import_library(flavor: Flavor) -> Any:
    """The TensorRT-API module (typed ``Any``: tensorrt_rtx has the same
    API as tensorrt, which the stubs describe; callers annotate objects)."""
    for name in flavor.modules:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise BackendUnsupported(f"{flavor.name} needs the Python package {' or '.join(flavor.modules)}, "
                             "which is not installed on this worker")


def library_version(lib: Any) -> str:
    return str(getattr(lib, "__version__", "unknown"))


def logger_for(lib: Any) -> Any:
    """One recording logger per library per process (TensorRT wants the
    same logger for every builder and runtime)."""
    key = lib.__name__
    if key not in _LOGGERS:
        _LOGGERS[key] = _make_logger(lib)
    logger = _LOGGERS[key]
    logger.messages.clear()
    return logger


def _make_logger(lib: Any) -> Any:
    base = lib.ILogger
    severity = lib.ILogger.Severity

    class RecordingLogger(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.messages: list[tuple[str, str]] = []

        def log(self, level: Any, msg: str) -> None:
            if level in (severity.INTERNAL_ERROR, severity.ERROR):
                self.messages.append(("error", msg))
            elif level == severity.WARNING:
                self.messages.append(("warning", msg))

        def errors(self) -> list[str]:
            return [m for kind, m in self.messages if kind == "error"]

    return RecordingLogger()


def last_error(logger: Any, default: str) -> str:
    """The most telling error line: the last one TensorRT logged."""
    errors = logger.errors()
    return errors[-1] if errors else default
