"""Knobs both TensorRT-family configs share, and their submit-time checks
(light: no library import, so the coordinator can validate specs)."""

from __future__ import annotations

from dataclasses import dataclass

from farm.backends import BackendConfig
from farm.errors import SpecError

OPTIMIZATION_LEVELS = range(0, 6)  # IBuilderConfig.builder_optimization_level (default 3)


@dataclass(frozen=True)
class TensorRTFamilyConfig(BackendConfig):
    builder_optimization_level: int | None = None  # 0..5, TensorRT's default 3
    workspace_mb: int | None = None  # MemoryPoolType.WORKSPACE limit; default: the device's memory
    max_aux_streams: int | None = None  # default: TensorRT's heuristic
    per_channel: bool | None = None  # int8/fp8 weights per channel (default True)

    def __post_init__(self) -> None:
        where = f"build.{self.name}"
        level = self.builder_optimization_level
        if level is not None and level not in OPTIMIZATION_LEVELS:
            raise SpecError(f"spec field '{where}.builder_optimization_level': {level!r} is not allowed "
                            f"(allowed: 0..5)")
        for knob in ("workspace_mb", "max_aux_streams"):
            value = getattr(self, knob)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise SpecError(f"spec field '{where}.{knob}': must be a non-negative integer (got {value!r})")
