from __future__ import annotations

from workers.backends.tensorrt_family.backend import TensorRTFamilyBackend
from workers.backends.tensorrt_family.capabilities import TENSORRT_RTX


class TensorRTRTXBackend(TensorRTFamilyBackend):
    flavor = TENSORRT_RTX
