"""Knobs both TensorRT-family configs share, declared with their bounds
(farm.knobs checks them at submit; no library import, so the coordinator
can validate specs)."""

from __future__ import annotations

from dataclasses import dataclass

from farm.backends import BackendConfig, highest_level
from farm.knobs import knob


@dataclass(frozen=True)
class TensorRTFamilyConfig(BackendConfig):
    artifact_suffix = ".engine"  # a serialized TensorRT / TensorRT-RTX engine (plan)
    multi_stream = True  # measure.streams > 1: one model copy and stream each (the runner's multi_stream)
    # IBuilderConfig.builder_optimization_level, TensorRT's default 3
    builder_optimization_level: int | None = knob(minimum=0, maximum=5)
    workspace_mb: int | None = knob(minimum=0)  # MemoryPoolType.WORKSPACE limit; default: the device's memory
    max_aux_streams: int | None = knob(minimum=0, maximum=64)  # default: TensorRT's heuristic
    per_channel: bool | None = None  # int8/fp8 weights per channel (default True)
    # BuilderFlag.TF32 (default False, as in Polygraphy: TensorRT's own default is on, which rounds
    # fp32 matmul/conv inputs to TF32 so an "fp32" engine would not be IEEE fp32 like its reference)
    tf32: bool | None = knob()
    # Plugin libraries (.so paths on the workers) to load before parsing and before loading the
    # engine; the library's own plugins (init_libnvinfer_plugins) are always registered.
    plugins: tuple[str, ...] | list[str] | None = knob()

    def __post_init__(self) -> None:
        if self.plugins is not None:  # checked by farm.knobs; stored as a tuple (hashable, one spelling)
            object.__setattr__(self, "plugins", tuple(str(p) for p in self.plugins))

    @classmethod
    def refuses_model(cls, model, device_kind, build):
        # A custom operator may be a plugin: the library's own registry or a
        # build's plugins; the parser decides, and its refusal names the node.
        return None

    @classmethod
    def tuned_build(cls, build: dict) -> dict | None:
        # Level 5 times every tactic TensorRT has (builds several times longer than the default 3).
        return highest_level(build, "builder_optimization_level")
