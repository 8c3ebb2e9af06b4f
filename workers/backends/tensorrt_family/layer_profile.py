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


def layer_details(inspection: dict) -> dict[str, dict]:
    """Layer name -> type, tactic and output precision, from the engine
    inspector's JSON (ProfilingVerbosity.DETAILED)."""
    details = {}
    for layer in inspection.get("layers") or []:
        if not isinstance(layer, dict) or "Name" not in layer:
            continue
        outputs = layer.get("Outputs") or [{}]
        first = outputs[0] if isinstance(outputs[0], dict) else {}
        entry = {"type": layer.get("LayerType"), "tactic": layer.get("TacticName") or layer.get("TacticValue"),
                 "precision": first.get("Format/Datatype")}
        details[str(layer["Name"])] = {k: v for k, v in entry.items() if v is not None}
    return details
