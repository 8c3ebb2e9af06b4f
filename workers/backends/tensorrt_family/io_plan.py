"""The runtime's decisions, as small pure functions over tensor descriptions.

Which inputs live in host memory (shape tensors: TensorRT reads their values
on the host while it plans the launch), which outputs need an output
allocator (a dimension still unknown once every input shape and shape-tensor
value is set: NonZero, NMS), which optimization profile a context uses, what
the builder's profile calls are, and whether the enqueue can be captured in
a CUDA graph. The descriptions come from real networks (build) and engines
(run); ``runtime`` and ``builder`` only carry the decisions out, so they are
tested here on descriptions of real TensorRT-RTX networks built on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from farm.errors import UserError

if TYPE_CHECKING:
    import tensorrt as trt


class EngineError(UserError):
    """A TensorRT call refused what the job asked (shapes outside the profile,
    no memory for a context): the job fails with this one line."""


@dataclass(frozen=True)
class TensorDesc:
    name: str
    mode: str  # "input" | "output"
    shape: tuple[int, ...]  # -1: not known until run time
    dtype: str  # TensorRT's DataType name, lower case ("float", "half", "int64", ...)
    shape_tensor: bool = False  # TensorRT reads its values on the host (ITensor.is_shape_tensor / is_shape_inference_io)


@dataclass(frozen=True)
class Range:
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]
    values: bool = False  # a shape tensor's value range, not a shape range

    def contains(self, point: Sequence[int]) -> bool:
        point = tuple(point)
        return (len(point) == len(self.min)
                and all(lo <= p <= hi for lo, p, hi in zip(self.min, point, self.max)))

    def text(self) -> str:
        return "/".join("x".join(map(str, s)) or "scalar" for s in (self.min, self.opt, self.max))


Profile = dict[str, Range]  # input name -> range, one optimization profile


def _name(value: Any) -> str:
    return str(getattr(value, "name", value)).split(".")[-1].lower()


def dims(value: Any) -> tuple[int, ...]:
    """trt.Dims (or any sequence) as a tuple; indexing works on every binding version."""
    return tuple(int(value[i]) for i in range(len(value)))


# ---- descriptions from real TensorRT objects -------------------------------------------------

def describe_network(network: trt.INetworkDefinition) -> list[TensorDesc]:
    def tensor(t: trt.ITensor, mode: str) -> TensorDesc:
        return TensorDesc(t.name, mode, dims(t.shape), _name(t.dtype), bool(t.is_shape_tensor))

    return ([tensor(network.get_input(i), "input") for i in range(network.num_inputs)]
            + [tensor(network.get_output(i), "output") for i in range(network.num_outputs)])


def describe_engine(engine: trt.ICudaEngine) -> list[TensorDesc]:
    descs = []
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        descs.append(TensorDesc(name, _name(engine.get_tensor_mode(name)), dims(engine.get_tensor_shape(name)),
                                _name(engine.get_tensor_dtype(name)), bool(engine.is_shape_inference_io(name))))
    return descs


def _range(triple: Sequence[Any], values: bool = False) -> Range:
    low, opt, high = (dims(t) for t in triple)
    return Range(low, opt, high, values=values)


def range_of(ranges: dict) -> Range:
    """A job's ``{min, opt, max}`` as a Range."""
    return Range(tuple(int(d) for d in ranges["min"]), tuple(int(d) for d in ranges["opt"]),
                 tuple(int(d) for d in ranges["max"]))


def built_profiles(profiles: Sequence[trt.IOptimizationProfile], descs: Sequence[TensorDesc]) -> list[Profile]:
    """The ranges the builder's profiles hold, read back from the profile objects."""
    out = []
    for profile in profiles:
        ranges: Profile = {}
        for desc in inputs(descs):
            if desc.shape_tensor:
                ranges[desc.name] = _range(profile.get_shape_input(desc.name), values=True)
            elif any(d < 0 for d in desc.shape):
                ranges[desc.name] = _range(profile.get_shape(desc.name))
        out.append(ranges)
    return out


def engine_profiles(engine: trt.ICudaEngine, descs: Sequence[TensorDesc]) -> list[Profile]:
    """Every optimization profile of a deserialized engine."""
    out = []
    for index in range(engine.num_optimization_profiles):
        ranges: Profile = {}
        for desc in inputs(descs):
            if desc.shape_tensor:
                # The binding takes (profile index, name) positionally, whatever its parameter names say.
                ranges[desc.name] = _range(engine.get_tensor_profile_values(index, desc.name), values=True)
            elif any(d < 0 for d in desc.shape):
                ranges[desc.name] = _range(engine.get_tensor_profile_shape(desc.name, index))
        out.append(ranges)
    return out


# ---- decisions --------------------------------------------------------------------------------

def inputs(descs: Sequence[TensorDesc]) -> list[TensorDesc]:
    return [d for d in descs if d.mode == "input"]


def outputs(descs: Sequence[TensorDesc]) -> list[TensorDesc]:
    return [d for d in descs if d.mode == "output"]


def input_memory(desc: TensorDesc) -> str:
    """"host" for shape tensors (their address must be a host pointer), else "device"."""
    return "host" if desc.shape_tensor else "device"


def output_memory(resolved_shape: Sequence[int], shape_tensor: bool = False) -> str:
    """"host" for an output TensorRT computes during shape inference (its
    values are written to host memory); "allocator" when the context still
    reports an unknown dimension after every input is set (a data-dependent
    shape); else "static" (a device buffer sized now)."""
    if shape_tensor:
        return "host"
    return "allocator" if any(d < 0 for d in resolved_shape) else "static"


def is_data_dependent(desc: TensorDesc, descs: Sequence[TensorDesc]) -> bool:
    """Known before any engine exists only where every input is static: an
    output dimension that is still -1 then depends on the data."""
    static_inputs = all(d >= 0 for i in inputs(descs) for d in i.shape) and not any(
        i.shape_tensor for i in inputs(descs))
    return desc.mode == "output" and static_inputs and output_memory(desc.shape) == "allocator"


def pick_profile(profiles: Sequence[Profile], shapes: dict[str, tuple[int, ...]],
                 values: dict[str, tuple[int, ...]]) -> int:
    """The first profile whose ranges hold every input's shape (and every
    shape tensor's values); EngineError naming the inputs otherwise."""
    misses = []
    for index, profile in enumerate(profiles):
        missing = [name for name, rng in profile.items()
                   if not rng.contains(values.get(name, ()) if rng.values else shapes.get(name, ()))]
        if not missing:
            return index
        misses.append(f"profile {index}: " + ", ".join(
            f"{n} {'values' if profile[n].values else 'shape'} "
            f"{list(values.get(n, ())) if profile[n].values else list(shapes.get(n, ()))} "
            f"outside {profile[n].text()}" for n in missing))
    raise EngineError("no optimization profile of the engine takes these inputs (" + "; ".join(misses) + ")")


def profile_calls(descs: Sequence[TensorDesc], shapes: dict[str, dict],
                  shape_values: dict[str, list[int]]) -> Profile:
    """What the builder's profile must hold: ``set_shape`` ranges for dynamic
    data inputs (the job's min/opt/max) and ``set_shape_input`` values for
    shape tensors. TensorRT specialises on a shape tensor's values, so the
    engine is built for exactly the values the job runs with."""
    calls: Profile = {}
    for desc in inputs(descs):
        if desc.shape_tensor:
            if desc.name not in shape_values:
                raise EngineError(f"input {desc.name!r} is a shape tensor (TensorRT reads its values to size other "
                                  f"tensors), so the engine is built for its values: give them in the spec's data: "
                                  f"(an .npz with an array {desc.name!r})")
            value = tuple(int(v) for v in shape_values[desc.name])
            calls[desc.name] = Range(value, value, value, values=True)
            continue
        ranges = shapes.get(desc.name)
        if ranges is None:
            if any(d < 0 for d in desc.shape):
                raise EngineError(f"the job gives no shape for dynamic input {desc.name!r} (dims {list(desc.shape)})")
            continue
        calls[desc.name] = range_of(ranges)
    return calls


def graph_plan(wanted: bool, allocator_outputs: Sequence[str], capturable: bool | None,
               runtime_graphs: bool) -> tuple[str, str | None]:
    """How the timed loop gets its CUDA graph: ("farm" | "runtime" | "off",
    why not "farm"). trtexec 11 captures by default. An output allocator
    reallocates during the enqueue, which a graph cannot replay, so such
    engines run without one (as trtexec does). ``capturable`` is the
    context's answer to ``is_stream_capturable`` (None where the library has
    no such call: the farm then captures, as trtexec does); where it is False
    RTX's runtime replays its own graphs (``runtime_graphs``)."""
    if not wanted:
        return "off", None
    if allocator_outputs:
        return "off", (f"outputs {', '.join(allocator_outputs)} have data-dependent shapes (output allocator); "
                       "a CUDA graph cannot replay their allocation")
    if capturable is False:
        why = "the execution context is not stream capturable (IExecutionContext.is_stream_capturable)"
        if runtime_graphs:
            return "runtime", why + "; the runtime's own graphs (CudaGraphStrategy.WHOLE_GRAPH_CAPTURE) replay it"
        return "off", why
    return "farm", None
