"""Keras 3 ``.keras`` file -> ONNX with Keras's own ``model.export(path,
format="onnx")``, on Keras's TensorFlow backend: there Keras exports through
tf2onnx and keeps dynamic dims (batch included), while its torch backend
fixes every dynamic dim to 1 (Keras 3 documents this)."""

from __future__ import annotations

import os
from pathlib import Path

from converters import CONVERTERS, ConversionFailed, MissingFramework
from converters import parity as parity_check
from converters.tensorflow_model import _onnx_feeds, quiet_tensorflow, unsupported_ops_raise

CONVERTER = CONVERTERS["keras"].name


def _keras():
    os.environ["KERAS_BACKEND"] = "tensorflow"
    quiet_tensorflow()
    try:
        import keras
        import tensorflow  # noqa: F401
        import tf2onnx  # noqa: F401
    except ModuleNotFoundError as exc:
        raise MissingFramework(f"converting a Keras model needs {exc.name}, which is not installed here: "
                               f"pip install 'engine-farm[keras]'") from None
    from converters.tensorflow_model import _numpy2_compat

    _numpy2_compat()
    return keras


def _expected(source: Path, data: Path | None, shapes: dict | None):
    """(model, declared inputs, feeds, where they come from, Keras's own outputs for them)."""
    keras = _keras()
    try:
        model = keras.saving.load_model(str(source))  # safe_mode: no arbitrary code from the file
    except Exception as exc:
        raise ConversionFailed(f"keras.saving.load_model (Keras {keras.__version__}) cannot load {source.name}: "
                               f"{_first_line(exc)}") from None
    declared = [{"name": t.name, "dtype": str(t.dtype), "dims": [d if d is None else int(d) for d in t.shape]}
                for t in model.inputs]
    names = [d["name"] for d in declared]
    feeds = parity_check.data_feeds(data, names, 2) if data else None
    inputs_from = "data"
    if feeds is None:
        inputs_from = "synthetic"
        feeds = parity_check.synthetic_feeds(
            [{**d, "shape": parity_check.concrete_shape(d["dims"], shapes, d["name"])} for d in declared])
    args = [feeds[n] for n in names]
    expected = model(args if len(args) > 1 else args[0], training=False)  # also marks the model called
    leaves = [parity_check_np(t) for t in keras.tree.flatten(expected)]
    return model, declared, feeds, inputs_from, leaves


def parity(source: Path, out: Path, data: Path | None, shapes: dict | None) -> dict:
    _, _, feeds, inputs_from, leaves = _expected(source, data, shapes)
    return parity_check.compare(out, _onnx_feeds(out, feeds), leaves, inputs_from)


def convert(source: Path, out: Path, data: Path | None, shapes: dict | None) -> dict:
    keras = _keras()
    model, declared, feeds, inputs_from, leaves = _expected(source, data, shapes)
    import tf2onnx

    label = f"{CONVERTER} (Keras {keras.__version__}, tf2onnx {tf2onnx.__version__})"
    with unsupported_ops_raise(label, f"Keras model {source.name}"):
        model.export(str(out), format="onnx", verbose=False)
    parity_check.check_ops(out, label)
    return {"inputs": declared, "keras_backend": "tensorflow",
            "parity": parity_check.compare(out, _onnx_feeds(out, feeds), leaves, inputs_from)}


def parity_check_np(tensor):
    import numpy as np

    return np.asarray(tensor)


def _first_line(exc: BaseException) -> str:
    line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    return line if len(line) <= 300 else line[:300] + "..."
