"""ONNX Runtime under another name that also needs a package most hosts
lack (``farm_extra_pkg``): a stand-in for TensorRT in a mixed farm, where
only some workers have the library. Registered as
FARM_EXTRA_BACKENDS="needs-extra=tests.integration.plugins.needs_extra:NeedsExtraConfig"."""

from __future__ import annotations

from dataclasses import dataclass

from workers.backends.onnxruntime.config import OnnxRuntimeConfig


@dataclass(frozen=True)
class NeedsExtraConfig(OnnxRuntimeConfig):
    name = "needs-extra"
    requires = ("onnxruntime", "farm_extra_pkg")
