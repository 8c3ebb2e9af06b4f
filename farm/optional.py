"""Optional dependencies: which extra of engine-farm installs each one, and
one place that turns a missing one into one ``Error:`` line naming the
exact ``pip install 'engine-farm[extra]'``.

The extras are declared in pyproject.toml; this table says which to
install for each importable module.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from farm.errors import MissingDependencyError

# importable module -> (PyPI package as users know it, engine-farm extra)
EXTRAS: dict[str, tuple[str, str]] = {
    "psycopg": ("psycopg", "postgres"),
    "boto3": ("boto3", "s3"),
    "botocore": ("boto3", "s3"),
    "pyarrow": ("pyarrow", "parquet"),
    "flower": ("flower", "deploy"),
    "torch": ("torch", "torch"),
    "onnx2torch": ("onnx2torch", "torch"),
    "tensorrt": ("tensorrt", "tensorrt"),
    "torch_tensorrt": ("torch-tensorrt", "torch-tensorrt"),
    "tensorrt_rtx": ("tensorrt-rtx", "tensorrt-rtx"),
    "tensorrt_rtx_bindings": ("tensorrt-rtx", "tensorrt-rtx"),
    "cuda": ("cuda-python", "cuda"),
    "onnxscript": ("onnxscript", "torch"),
    "keras": ("keras", "keras"),
    "tensorflow": ("tensorflow", "tensorflow"),
    "tf2onnx": ("tf2onnx", "tensorflow"),
}


def install_hint(module: str) -> str:
    package, extra = EXTRAS.get(module.split(".")[0], (module, None))
    return f"pip install 'engine-farm[{extra}]'" if extra else f"pip install {package}"


def missing_message(module: str, needed_for: str) -> str:
    package = EXTRAS.get(module.split(".")[0], (module, None))[0]
    return f"{needed_for} needs {package}, which is not installed here: {install_hint(module)}"


def require(module: str, needed_for: str) -> ModuleType:
    """Import ``module`` or raise MissingDependencyError (a UserError)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.split(".")[0]
        if exc.name and exc.name.split(".")[0] not in (top, *_siblings(top)):
            raise  # the module is there but something it imports is broken: a bug, keep the traceback
        raise MissingDependencyError(missing_message(module, needed_for)) from None


def _siblings(top: str) -> tuple[str, ...]:
    extra = EXTRAS.get(top, (None, None))[1]
    return tuple(name for name, (_, e) in EXTRAS.items() if e == extra)


def from_import_error(exc: ImportError, needed_for: str) -> MissingDependencyError | None:
    """The one-line error for an ImportError raised inside a library (e.g.
    SQLAlchemy loading the psycopg dialect), or None if it is not about a
    known optional dependency."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    if name in EXTRAS:
        return MissingDependencyError(missing_message(name, needed_for))
    return None

