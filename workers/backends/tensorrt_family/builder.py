"""ONNX -> strongly typed network -> serialized engine, one optimization
profile per job. Precision is the model's (strongly typed networks take
every tensor type from it), so there are no FP16/INT8 builder flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from farm.errors import BackendUnsupported
from workers.backends.tensorrt_family.capabilities import RTX_TARGETS, Flavor
from workers.backends.tensorrt_family.library import last_error, logger_for
from workers.backends.tensorrt_family.shared_dims import conflicts

if TYPE_CHECKING:
    import tensorrt as trt

def dims(value: trt.Dims) -> list[int]:
    """Dims as a list (indexing works on every binding version)."""
    return [value[i] for i in range(len(value))]


HARDWARE_LEVELS = {"none": "NONE", "ampere_plus": "AMPERE_PLUS", "same_compute_capability": "SAME_COMPUTE_CAPABILITY"}


@dataclass
class BuiltEngine:
    serialized: bytes
    settings: dict  # the resolved build configuration, read back from the builder config
    inputs: list[dict] = field(default_factory=list)  # network I/O: name, dtype, shape (-1 = dynamic)
    outputs: list[dict] = field(default_factory=list)
    timing_cache: bytes | None = None  # the timing cache after the build, serialized (full TensorRT)


def parse_onnx(lib: Any, builder: trt.Builder, onnx_path: Path,
               logger: Any) -> tuple[trt.INetworkDefinition, trt.OnnxParser]:
    """The network and its parser (which must outlive the network's use)."""
    flag = 1 << int(lib.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network: trt.INetworkDefinition = builder.create_network(flag)
    parser: trt.OnnxParser = lib.OnnxParser(network, logger)
    # parse_from_file resolves external weights beside the model file.
    if not parser.parse_from_file(str(onnx_path)):
        problems = [_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        raise BackendUnsupported("the ONNX parser rejected the model: " + "; ".join(problems or [
            last_error(logger, "no error reported")]))
    return network, parser


def _parser_error(error: trt.ParserError) -> str:
    node = error.node_name() or f"#{error.node()}"
    operator = error.node_operator()
    where = f"node {node}" + (f" ({operator})" if operator else "")
    return f"{where}: {error.desc().strip()}"


def add_profile(lib: Any, builder: trt.Builder, network: trt.INetworkDefinition, config: trt.IBuilderConfig,
                shapes: dict[str, dict]) -> list[dict]:
    profile: trt.IOptimizationProfile = builder.create_optimization_profile()
    for index in range(network.num_inputs):
        tensor: trt.ITensor = network.get_input(index)
        ranges = shapes.get(tensor.name)
        if ranges is None:
            if any(d < 0 for d in dims(tensor.shape)):
                raise BackendUnsupported(f"the job gives no shape for dynamic input {tensor.name!r}")
            continue
        low, opt, high = (lib.Dims(list(ranges[k])) for k in ("min", "opt", "max"))
        profile.set_shape(tensor.name, low, opt, high)
    config.add_optimization_profile(profile)
    return [{name: {k: list(v) for k, v in rng.items()} for name, rng in shapes.items()}]


def apply_knobs(lib: Any, flavor: Flavor, config: trt.IBuilderConfig, knobs: Any, precision: str) -> None:
    if knobs.builder_optimization_level is not None:
        config.builder_optimization_level = knobs.builder_optimization_level
    if knobs.workspace_mb is not None:
        config.set_memory_pool_limit(lib.MemoryPoolType.WORKSPACE, knobs.workspace_mb << 20)
    if knobs.max_aux_streams is not None:
        config.max_aux_streams = knobs.max_aux_streams
    # Detailed layer information makes the engine inspector useful in the
    # metadata; it does not change the kernels chosen.
    config.profiling_verbosity = lib.ProfilingVerbosity.DETAILED
    if flavor.hardware_compatibility and getattr(knobs, "hardware_compatibility_level", None):
        level = HARDWARE_LEVELS[knobs.hardware_compatibility_level]
        config.hardware_compatibility_level = getattr(lib.HardwareCompatibilityLevel, level)
    if flavor.compute_capability_targets:
        targets = knobs.targets(precision)
        rtx: Any = config  # TensorRT-RTX-only API, absent from TensorRT's stubs
        rtx.num_compute_capabilities = len(targets)
        for index, target in enumerate(targets):
            name = "CURRENT" if target == "current" else RTX_TARGETS[target]
            rtx.set_compute_capability(getattr(lib.ComputeCapability, name), index)


def resolved_settings(lib: Any, flavor: Flavor, config: trt.IBuilderConfig) -> dict:
    """What the builder will use, read back (defaults included)."""
    settings: dict[str, Any] = {
        "strongly_typed": True,
        "builder_optimization_level": config.builder_optimization_level,
        "workspace_bytes": int(config.get_memory_pool_limit(lib.MemoryPoolType.WORKSPACE)),
        "max_aux_streams": config.max_aux_streams,
    }
    if flavor.hardware_compatibility:
        settings["hardware_compatibility_level"] = _enum_name(config.hardware_compatibility_level)
    if flavor.compute_capability_targets:
        rtx: Any = config  # TensorRT-RTX-only API
        settings["compute_capabilities"] = [_cc_text(rtx.get_compute_capability(i))
                                            for i in range(rtx.num_compute_capabilities)]
    return settings


def _enum_name(value: Any) -> str:
    return str(getattr(value, "name", value)).split(".")[-1].lower()


def _cc_text(value: Any) -> str:
    name = _enum_name(value)
    reverse = {v.lower(): k for k, v in RTX_TARGETS.items()}
    return reverse.get(name, name)


def io_tensors(network: trt.INetworkDefinition) -> tuple[list[dict], list[dict]]:
    def describe(tensor: trt.ITensor) -> dict:
        return {"name": tensor.name, "dtype": _enum_name(tensor.dtype), "shape": dims(tensor.shape)}

    inputs = [describe(network.get_input(i)) for i in range(network.num_inputs)]
    outputs = [describe(network.get_output(i)) for i in range(network.num_outputs)]
    return inputs, outputs


def build_engine(lib: Any, flavor: Flavor, knobs: Any, onnx_path: Path, shapes: dict[str, dict],
                 precision: str, timing_cache: bytes | None = None) -> BuiltEngine:
    logger = logger_for(lib)
    builder: trt.Builder = lib.Builder(logger)
    network, _parser = parse_onnx(lib, builder, onnx_path, logger)
    config: trt.IBuilderConfig = builder.create_builder_config()
    profiles = add_profile(lib, builder, network, config, shapes)
    apply_knobs(lib, flavor, config, knobs, precision)
    if timing_cache is not None:
        # Mismatched caches (other GPU or version) are refused, never mixed.
        cache: trt.ITimingCache = config.create_timing_cache(timing_cache)
        config.set_timing_cache(cache, False)
    settings = {**resolved_settings(lib, flavor, config), "profiles": profiles}
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        why = "; ".join(conflicts(onnx_path, shapes)) or last_error(logger, "the builder returned no engine")
        raise BackendUnsupported(f"{flavor.name} could not build the engine: {why}")
    inputs, outputs = io_tensors(network)
    cache_after = bytes(memoryview(config.get_timing_cache().serialize())) if timing_cache is not None else None
    return BuiltEngine(bytes(memoryview(serialized)), settings, inputs, outputs, cache_after)
