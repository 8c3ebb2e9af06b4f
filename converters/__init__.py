"""Model converters: a model as its user has it (a torch.export program, a
Keras 3 file, a TensorFlow SavedModel or frozen graph) -> ONNX, with the
format's own maintained exporter, plus a parity check of the converted model
against the source framework's own outputs.

The converters run only in a subprocess (``python -m converters``, see
``__main__``): the coordinator (``farm/``) never imports torch, TensorFlow
or Keras. It reads this module's light table (no framework import) to name a
conversion before running it (farm/sources.py) and reads the JSON record the
subprocess writes.
"""

from __future__ import annotations

from importlib import metadata


class Converter:
    def __init__(self, name: str, versioned: tuple[str, ...], extra: str, module: str, function: str,
                 parity: str):
        self.name = name  # the exporter, as users call it
        self.versioned = versioned  # distributions whose versions make the converter ("a|b": either)
        self.extra = extra  # the engine-farm extra that installs it
        self.module, self.function = module, function
        self.parity = parity  # the module's function checking a converted model against the source


CONVERTERS = {
    "torch.export": Converter("torch.onnx.export(dynamo=True)", ("torch", "onnxscript", "onnx"), "torch",
                              "converters.torch_export", "convert", "parity"),
    "keras": Converter("keras Model.export(format='onnx')",
                       ("keras", "tf2onnx", "tensorflow|tensorflow-cpu", "onnx"), "keras",
                       "converters.keras_model", "convert", "parity"),
    "tf-saved-model": Converter("tf2onnx", ("tf2onnx", "tensorflow|tensorflow-cpu", "onnx"), "tensorflow",
                                "converters.tensorflow_model", "convert_saved_model", "saved_model_parity"),
    "tf-frozen-graph": Converter("tf2onnx", ("tf2onnx", "tensorflow|tensorflow-cpu", "onnx"), "tensorflow",
                                 "converters.tensorflow_model", "convert_frozen_graph", "frozen_graph_parity"),
}
FORMATS = tuple(CONVERTERS)


def versions(distributions: tuple[str, ...]) -> dict[str, str | None]:
    """Installed versions (read from package metadata, nothing imported), by
    each entry's first name."""
    found = {}
    for entry in distributions:
        names = entry.split("|")
        found[names[0]] = next((v for v in (_version(n) for n in names) if v), None)
    return found


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


class ConversionFailed(Exception):
    """The converter could not convert the model: one line naming the op or
    node and the converter (shown to the user as ``Error: ...``)."""


class MissingFramework(Exception):
    """The source framework or its exporter is not installed: the message
    names the engine-farm extra that installs it."""
