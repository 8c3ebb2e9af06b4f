"""ONNX -> strongly typed network -> serialized engine, one optimization
profile per job (shape tensors get ``set_shape_input``). Precision is the
model's (strongly typed networks take every tensor type from it), so there
are no FP16/INT8 builder flags; TF32 is an explicit knob, off by default
(as in Polygraphy), so an fp32 engine computes in IEEE fp32 like the
reference it is checked against."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from farm.errors import BackendUnsupported
from workers.refusals import cut
from workers.backends.tensorrt_family import io_plan, plugins
from workers.backends.tensorrt_family import shape_values as shape_api
from workers.backends.tensorrt_family.capabilities import RTX_TARGETS, Flavor
from workers.backends.tensorrt_family.io_plan import TensorDesc, dims
from workers.backends.tensorrt_family.library import last_error, logger_for
from workers.backends.tensorrt_family.shared_dims import conflicts

if TYPE_CHECKING:
    import tensorrt as trt

__all__ = ["BuiltEngine", "build_engine", "dims", "parse_onnx"]

HARDWARE_LEVELS = {"none": "NONE", "ampere_plus": "AMPERE_PLUS", "same_compute_capability": "SAME_COMPUTE_CAPABILITY"}


@dataclass
class BuiltEngine:
    serialized: bytes
    settings: dict  # the resolved build configuration, read back from the builder config
    inputs: list[dict] = field(default_factory=list)  # network I/O: name, dtype, shape (-1 = dynamic)
    outputs: list[dict] = field(default_factory=list)
    timing_cache: bytes | None = None  # the timing cache after the build, serialized (full TensorRT)
    engine: Any = None  # the ICudaEngine, where the build produced one (full TensorRT on its GPU)


def parse_onnx(lib: Any, builder: trt.Builder, onnx_path: Path, logger: Any,
               plugin_libraries: Sequence[str] = ()) -> tuple[trt.INetworkDefinition, trt.OnnxParser]:
    """The network and its parser (which must outlive the network's use).
    Plugins are registered first, so plugin nodes parse."""
    plugins.register(lib, logger, plugin_libraries)
    flag = 1 << int(lib.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network: trt.INetworkDefinition = builder.create_network(flag)
    parser: trt.OnnxParser = lib.OnnxParser(network, logger)
    # parse_from_file resolves external weights beside the model file.
    logger.messages.clear()
    if not parser.parse_from_file(str(onnx_path)):
        problems = [_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        cause = _first_cause(logger)
        # The first nodes name the cause; a model of 44 refused nodes is not 44 lines of reason.
        raise BackendUnsupported("the ONNX parser rejected the model: " + (cut(problems, "more nodes") or last_error(
            logger, "no error reported")) + (f" (TensorRT logged first: {cause})" if cause else ""))
    return network, parser


def _first_cause(logger: Any) -> str | None:
    """The first error TensorRT logged before the parser gave up, where it is
    not the parser's own summary: a plugin whose creator was found but failed
    (no GPU, bad fields) is reported by the parser as "not found"."""
    errors = [e for e in logger.errors() if "ModelImporter" not in e and "Assertion failed" not in e]
    return errors[0].strip().splitlines()[0][:300] if errors else None


def _parser_error(error: trt.ParserError) -> str:
    node = error.node_name() or f"#{error.node()}"
    operator = error.node_operator()
    where = f"node {node}" + (f" ({operator})" if operator else "")
    desc = error.desc().strip()
    # The parser's description of an operator it has no importer for is the bare word "false".
    return f"{where}: {desc if desc not in ('', 'false') else 'not supported by this parser'}"


def add_profiles(lib: Any, builder: trt.Builder, config: trt.IBuilderConfig, descs: Sequence[TensorDesc],
                 profiles: Sequence[dict[str, dict]], shape_values: dict[str, list[int]],
                 logger: Any = None) -> list[io_plan.Profile]:
    """One optimization profile per entry of ``profiles`` (a job has one);
    returns what the profiles hold, read back from TensorRT's objects."""
    made: list[trt.IOptimizationProfile] = []
    api = shape_api.values_api(lib, builder)
    for shapes in profiles:
        profile: trt.IOptimizationProfile = builder.create_optimization_profile()
        for name, rng in io_plan.profile_calls(descs, shapes, shape_values).items():
            if rng.values:
                shape_api.set_values(profile, name, rng, api)
            else:
                profile.set_shape(name, lib.Dims(list(rng.min)), lib.Dims(list(rng.opt)), lib.Dims(list(rng.max)))
        if config.add_optimization_profile(profile) < 0:
            raise BackendUnsupported(f"TensorRT refused optimization profile {len(made)} ({_profile_text(shapes)}): "
                                     + (last_error(logger, "no error reported") if logger else "no error reported"))
        made.append(profile)
    return io_plan.built_profiles(made, descs)


def _profile_text(shapes: dict[str, dict]) -> str:
    return ", ".join(f"{n} {io_plan.range_of(r).text()}" for n, r in shapes.items())


def resolve_tf32(knob: bool | None) -> bool:
    """TF32 only when asked: TensorRT's default is on, which makes "fp32"
    engines round matmul/conv inputs to 10-bit mantissas."""
    return bool(knob)


def apply_knobs(lib: Any, flavor: Flavor, config: trt.IBuilderConfig, knobs: Any, precision: str) -> None:
    if knobs.builder_optimization_level is not None:
        config.builder_optimization_level = knobs.builder_optimization_level
    if knobs.workspace_mb is not None:
        config.set_memory_pool_limit(lib.MemoryPoolType.WORKSPACE, knobs.workspace_mb << 20)
    if knobs.max_aux_streams is not None:
        config.max_aux_streams = knobs.max_aux_streams
    if resolve_tf32(getattr(knobs, "tf32", None)):
        config.set_flag(lib.BuilderFlag.TF32)
    else:
        config.clear_flag(lib.BuilderFlag.TF32)
    # Detailed layer information makes the engine inspector and the layer
    # profile name real layers; it does not change the kernels chosen.
    config.profiling_verbosity = lib.ProfilingVerbosity.DETAILED
    if getattr(knobs, "version_compatible", None):
        config.set_flag(lib.BuilderFlag.VERSION_COMPATIBLE)
    flag = getattr(lib.BuilderFlag, "REQUIRE_USER_ALLOCATION", None)
    if flavor.runtime_config and flag is not None and getattr(knobs, "require_user_allocation", None) is not False:
        config.set_flag(flag)  # RTX: needed for CUDA stream capture of its engines
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


def resolved_settings(lib: Any, flavor: Flavor, network: trt.INetworkDefinition,
                      config: trt.IBuilderConfig) -> dict:
    """What the builder will use, read back from the network and config (defaults included)."""
    settings: dict[str, Any] = {
        "strongly_typed": bool(network.get_flag(lib.NetworkDefinitionCreationFlag.STRONGLY_TYPED)),
        "tf32": bool(config.get_flag(lib.BuilderFlag.TF32)),
        "builder_optimization_level": config.builder_optimization_level,
        "workspace_bytes": int(config.get_memory_pool_limit(lib.MemoryPoolType.WORKSPACE)),
        "max_aux_streams": config.max_aux_streams,
        "profiling_verbosity": _enum_name(config.profiling_verbosity),
    }
    if flavor.hardware_compatibility:
        settings["hardware_compatibility_level"] = _enum_name(config.hardware_compatibility_level)
    flag = getattr(getattr(lib, "BuilderFlag", None), "VERSION_COMPATIBLE", None)
    if flag is not None:  # honoured by farm fetch's version check (farm.compat)
        settings["version_compatible"] = bool(config.get_flag(flag))
    flag = getattr(getattr(lib, "BuilderFlag", None), "REQUIRE_USER_ALLOCATION", None)
    if flavor.runtime_config and flag is not None:
        settings["require_user_allocation"] = bool(config.get_flag(flag))
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


def io_tensors(descs: Sequence[TensorDesc]) -> tuple[list[dict], list[dict]]:
    def describe(desc: TensorDesc) -> dict:
        entry: dict[str, Any] = {"name": desc.name, "dtype": desc.dtype, "shape": list(desc.shape)}
        if desc.shape_tensor:
            entry["shape_tensor"] = True
        if io_plan.is_data_dependent(desc, descs):
            entry["data_dependent_shape"] = True
        return entry

    return [describe(d) for d in io_plan.inputs(descs)], [describe(d) for d in io_plan.outputs(descs)]


def _use_timing_cache(config: trt.IBuilderConfig, blob: bytes, settings: dict) -> None:
    """Load the shared cache; one TensorRT refuses (another GPU or version:
    ``ignore_mismatch=False`` never mixes them) is replaced by an empty one,
    so the build still learns a cache of its own."""
    cache: trt.ITimingCache = config.create_timing_cache(blob)
    if config.set_timing_cache(cache, False):
        settings["timing_cache"] = "loaded" if blob else "new"
        return
    settings["timing_cache"] = "refused (another GPU or TensorRT version); built with a new one"
    if not config.set_timing_cache(config.create_timing_cache(b""), False):
        settings["timing_cache"] = "refused, and TensorRT refused a new one too; built without"


def _learned_cache(config: trt.IBuilderConfig) -> bytes | None:
    cache: trt.ITimingCache | None = config.get_timing_cache()
    return None if cache is None else bytes(memoryview(cache.serialize()))


def build_engine(lib: Any, flavor: Flavor, knobs: Any, onnx_path: Path, shapes: dict[str, dict] | list[dict],
                 precision: str, timing_cache: bytes | None = None, shape_values: dict[str, list[int]] | None = None,
                 engine_here: bool = False) -> BuiltEngine:
    """``shapes``: the job's profile (or a list of profiles). ``shape_values``:
    the values the job feeds its shape-tensor inputs. ``engine_here``: this
    process can run the engine, so build the engine object itself (full
    TensorRT's ``build_engine_with_config``) and inspect it without
    deserializing it a second time."""
    logger = logger_for(lib)
    builder: trt.Builder = lib.Builder(logger)
    libraries = tuple(getattr(knobs, "plugins", None) or ())
    network, _parser = parse_onnx(lib, builder, onnx_path, logger, libraries)
    descs = io_plan.describe_network(network)
    config: trt.IBuilderConfig = builder.create_builder_config()
    profile_list = shapes if isinstance(shapes, list) else [shapes]
    built_ranges = add_profiles(lib, builder, config, descs, profile_list, shape_values or {}, logger)
    apply_knobs(lib, flavor, config, knobs, precision)
    settings = resolved_settings(lib, flavor, network, config)
    settings["shape_values_api"] = shape_api.values_api(lib, builder)
    settings["plugin_libraries"] = list(libraries)
    if timing_cache is not None:
        _use_timing_cache(config, timing_cache, settings)
    settings["profiles"] = [{name: {k: list(v) for k, v in rng.items()} for name, rng in p.items()} for p in profile_list]
    settings["profile_ranges"] = [{n: {"min": list(r.min), "opt": list(r.opt), "max": list(r.max),
                                       "kind": "values" if r.values else "shape"} for n, r in p.items()}
                                  for p in built_ranges]
    engine, serialized = _build(builder, network, config, engine_here)
    if serialized is None:
        why = "; ".join(conflicts(onnx_path, profile_list[0])) or last_error(logger, "the builder returned no engine")
        raise BackendUnsupported(f"{flavor.name} could not build the engine: {why}")
    inputs, outputs = io_tensors(descs)
    learned = _learned_cache(config) if timing_cache is not None else None
    return BuiltEngine(bytes(memoryview(serialized)), settings, inputs, outputs, learned, engine)


def _build(builder: trt.Builder, network: trt.INetworkDefinition, config: trt.IBuilderConfig,
           engine_here: bool) -> tuple[Any, Any]:
    """(engine or None, serialized bytes or None)."""
    if engine_here and hasattr(builder, "build_engine_with_config"):
        engine: trt.ICudaEngine | None = builder.build_engine_with_config(network, config)
        return (engine, engine.serialize()) if engine is not None else (None, None)
    return None, builder.build_serialized_network(network, config)
