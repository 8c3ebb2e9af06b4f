"""Engine metadata: what was built, for which GPUs, from what.

Stored as the ``engine-metadata`` JSON artifact and in the job's build
info. ``runs_on`` is what ``farm fetch`` checks (farm.compat) before
handing an engine to a device.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from workers.backends.base import DeviceContext
from workers.backends.tensorrt_family.builder import BuiltEngine
from workers.backends.tensorrt_family.capabilities import Flavor
from workers.backends.tensorrt_family.io_plan import TensorDesc, describe_engine
from workers.backends.tensorrt_family.layer_profile import io_tensor_names, schema_version

if TYPE_CHECKING:
    import tensorrt as trt


def runs_on(flavor: Flavor, settings: dict, device: DeviceContext, version: str) -> dict:
    """Compute capabilities the engine runs on, and the library it needs."""
    newer = False
    if flavor.compute_capability_targets:
        targets = settings.get("compute_capabilities") or list(flavor.runtime_compute_capabilities)
        capabilities = [device.compute_capability if t == "current" else t for t in targets]
    elif settings.get("hardware_compatibility_level") == "ampere_plus":
        capabilities, newer = ["8.0"], True
    else:
        capabilities = [device.compute_capability] if device.compute_capability else []
    where = {"compute_capabilities": [c for c in capabilities if c], "newer_compute_capabilities": newer,
             "library": flavor.name, "library_version": version, "version_match": flavor.version_match,
             "version_compatible": bool(settings.get("version_compatible")), "gpu_only": True}
    if flavor.hardware_compatibility and settings.get("hardware_compatibility_level") in (None, "none"):
        # Without a hardware compatibility level a TensorRT engine is valid
        # only on the kind of GPU that built it, not every GPU of its
        # compute capability (an L40S and an RTX 6000 Ada share 8.9).
        where["device_classes"] = [device.device_class]
    return where


def inspect_engine(lib: Any, engine: trt.ICudaEngine | None, reason: str | None = None) -> dict:
    """Layer information from the engine inspector, for an engine object the
    build or the runtime already holds: an engine is never deserialized a
    second time just to be described. Without one, say why."""
    if engine is None:
        return {"available": False, "reason": reason or "no engine object here"}
    inspector: trt.EngineInspector = engine.create_engine_inspector()
    text = inspector.get_engine_information(lib.LayerInformationFormat.JSON)
    try:
        information = json.loads(text)
    except ValueError:
        information = {}
    information = information if isinstance(information, dict) else {}
    return {"available": True, "num_layers": engine.num_layers, "layers": information.get("Layers", []),
            "inspector_schema": schema_version(information), "inspector_io": io_tensor_names(information),
            "io": [_engine_tensor(d) for d in describe_engine(engine)]}


def no_engine_reason(flavor: Flavor, device: DeviceContext) -> str:
    """Why a build has no engine object to inspect (the runtime adds the
    layers to the job's layer profile when it measures the engine)."""
    if device.kind != "gpu":
        return (f"built on the CPU {device.name}: {flavor.name} engines load only on a GPU, so layer information "
                "is recorded when a GPU worker measures the engine (layer-profile artifact)")
    return (f"{flavor.name} builds a serialized engine here; layer information is recorded when the engine "
            "is loaded for measurement (layer-profile artifact)")


def _engine_tensor(desc: TensorDesc) -> dict:
    entry: dict[str, Any] = {"name": desc.name, "mode": desc.mode, "dtype": desc.dtype, "shape": list(desc.shape)}
    if desc.shape_tensor:
        entry["shape_tensor"] = True
    return entry


def engine_metadata(flavor: Flavor, version: str, built: BuiltEngine, device: DeviceContext,
                    inspection: dict, source: dict) -> dict:
    return {
        "library": flavor.name,
        "library_version": version,
        "runs_on": runs_on(flavor, built.settings, device, version),
        "hardware_compatibility_level": built.settings.get("hardware_compatibility_level"),
        "built_on": {"kind": device.kind, "name": device.name, "device_class": device.device_class,
                     "compute_capability": device.compute_capability},
        "build_settings": built.settings,
        "profiles": built.settings.get("profiles", []),
        "inputs": built.inputs,
        "outputs": built.outputs,
        "engine_bytes": len(built.serialized),
        "source_model": source,
        "layers": inspection,
    }
