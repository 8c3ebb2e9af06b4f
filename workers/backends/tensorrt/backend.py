from __future__ import annotations

from workers.backends.tensorrt_family.backend import TensorRTFamilyBackend
from workers.backends.tensorrt_family.capabilities import TENSORRT


class TensorRTBackend(TensorRTFamilyBackend):
    flavor = TENSORRT
