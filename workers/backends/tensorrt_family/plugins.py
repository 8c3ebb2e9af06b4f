"""TensorRT plugins: the library's own and the plugin libraries a build names
(``build: {tensorrt: {plugins: [/path/libmyplugin.so]}}``).

ONNX nodes that TensorRT imports as plugins (``RoiAlign`` as ``ROIAlign_TRT``,
``EfficientNMS_TRT``, a custom op named after its creator) parse only when the
creator is in the process-wide plugin registry the parser consults. Full
TensorRT's standard plugins live in libnvinfer_plugin and are registered by
``init_libnvinfer_plugins``; TensorRT-RTX registers its few built-in ones
(ROIAlign_TRT in 1.7) by itself. Both get ``init_libnvinfer_plugins`` once per
process, then each named library is loaded into the registry, before the
parser (build) and before deserialization (run). What was registered is
recorded with the build and the measurement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from farm.errors import BackendUnsupported

_INITIALISED: set[str] = set()
_LOADED: dict[str, set[str]] = {}


def init_library_plugins(lib: Any, logger: Any) -> bool:
    """The library's standard plugins, once per process (True if registered)."""
    key = lib.__name__
    if key not in _INITIALISED:
        init = getattr(lib, "init_libnvinfer_plugins", None)
        if init is None or not init(logger, ""):
            return False
        _INITIALISED.add(key)
    return True


def load_libraries(lib: Any, paths: Sequence[str]) -> list[str]:
    """Load each plugin library into the registry (once per process and path)."""
    loaded = _LOADED.setdefault(lib.__name__, set())
    registry = lib.get_plugin_registry()
    for path in paths:
        resolved = str(Path(path).expanduser())
        if resolved in loaded:
            continue
        if not Path(resolved).is_file():
            raise BackendUnsupported(f"plugin library {path!r} does not exist on this worker "
                                     "(build.tensorrt.plugins names files on the workers)")
        if registry.load_library(resolved) is None:
            raise BackendUnsupported(f"TensorRT could not load plugin library {path!r}")
        loaded.add(resolved)
    return sorted(loaded)


def register(lib: Any, logger: Any, libraries: Sequence[str] = ()) -> dict:
    """Standard plugins plus ``libraries``; returns what the registry now holds."""
    standard = init_library_plugins(lib, logger)
    loaded = load_libraries(lib, libraries) if libraries else []
    creators = sorted({c.name for c in lib.get_plugin_registry().all_creators})
    return {"standard_plugins": standard, "libraries": loaded, "creators": creators}
