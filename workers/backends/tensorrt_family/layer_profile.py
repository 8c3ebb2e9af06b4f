"""TensorRT's per-layer times: an ``IProfiler`` on a separate execution
context after the timed run (trtexec's ``--separateProfileRun``), joined
with the engine inspector's layer information (type, tactic, precision)."""

from __future__ import annotations

from typing import Any

PROFILE_ITERATIONS = 20


def make_profiler(lib: Any) -> Any:
    base = lib.IProfiler

    class LayerTimes(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.times: dict[str, list[float]] = {}

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            self.times.setdefault(layer_name, []).append(float(ms))

    return LayerTimes()


def tensor_precision(tensor: dict) -> str | None:
    """A layer tensor's type as the inspector says it. TensorRT 10 writes one
    combined key (``"Format/Datatype": "Row major linear FP16 format"``);
    TensorRT 11 splits it into ``"DataType"`` and ``"Format"`` (migration guide
    "Migrating IEngineInspector Usage from TensorRT 10.x to 11.x"). Either is
    read; a tensor with neither gives None, never a silently empty column."""
    if not isinstance(tensor, dict):
        return None
    if "Format/Datatype" in tensor:
        return str(tensor["Format/Datatype"])
    dtype, layout = tensor.get("DataType"), tensor.get("Format")
    if dtype is None and layout is None:
        return None
    return " / ".join(str(v) for v in (dtype, layout) if v is not None)


def io_tensor_names(information: dict) -> list[str]:
    """Engine I/O names: TensorRT 10's ``Bindings`` (a list of names) or
    TensorRT 11's ``I/O Tensors`` (a list of objects with ``Name``)."""
    if isinstance(information.get("I/O Tensors"), list):
        return [str(t.get("Name")) for t in information["I/O Tensors"] if isinstance(t, dict)]
    return [str(name) for name in information.get("Bindings") or []]


def schema_version(information: dict) -> str:
    """Which inspector schema the JSON follows ("11" or "10")."""
    if "I/O Tensors" in information:
        return "11"
    layers = [x for x in information.get("Layers") or [] if isinstance(x, dict)]
    tensors = [t for layer in layers for t in (layer.get("Inputs") or []) + (layer.get("Outputs") or [])
               if isinstance(t, dict)]
    if any("DataType" in t and "Format/Datatype" not in t for t in tensors):
        return "11"
    return "10"


def layer_details(inspection: dict) -> dict[str, dict]:
    """Layer name -> type, tactic and output precision, from the engine
    inspector's JSON (ProfilingVerbosity.DETAILED), TensorRT 10 or 11."""
    details = {}
    for layer in inspection.get("layers") or []:
        if not isinstance(layer, dict) or "Name" not in layer:
            continue
        outputs = layer.get("Outputs") or [{}]
        entry = {"type": layer.get("LayerType"), "tactic": layer.get("TacticName") or layer.get("TacticValue"),
                 "precision": tensor_precision(outputs[0])}
        details[str(layer["Name"])] = {k: v for k, v in entry.items() if v is not None}
    return details
