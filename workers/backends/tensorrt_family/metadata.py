"""Engine metadata: what was built, for which GPUs, from what.

Stored as the ``engine-metadata`` JSON artifact and in the job's build
info. ``runs_on`` is what ``farm fetch`` checks (farm.compat) before
handing an engine to a device.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from workers.backends.base import DeviceContext
from workers.backends.tensorrt_family.builder import BuiltEngine, dims
from workers.backends.tensorrt_family.capabilities import Flavor
from workers.backends.tensorrt_family.library import last_error, logger_for

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
    return {"compute_capabilities": [c for c in capabilities if c], "newer_compute_capabilities": newer,
            "library": flavor.name, "library_version": version, "version_match": flavor.version_match,
            "gpu_only": True}


def inspect_engine(lib: Any, serialized: bytes) -> dict:
    """Layer information from the engine inspector, which needs the engine
    deserialized: where the runtime cannot do that here (no GPU, or a GPU
    it does not support), say why instead."""
    logger = logger_for(lib)
    try:
        runtime: trt.Runtime = lib.Runtime(logger)
        engine: trt.ICudaEngine | None = runtime.deserialize_cuda_engine(serialized)
    except Exception as exc:  # the runtime library itself failing to start
        return {"available": False, "reason": f"the runtime failed: {exc}"}
    if engine is None:
        return {"available": False,
                "reason": "the runtime cannot deserialize the engine here: "
                          + last_error(logger, "no error reported")}
    inspector: trt.EngineInspector = engine.create_engine_inspector()
    text = inspector.get_engine_information(lib.LayerInformationFormat.JSON)
    try:
        layers = json.loads(text).get("Layers", [])
    except ValueError:
        layers = []
    return {"available": True, "num_layers": engine.num_layers, "layers": layers,
            "io": [_engine_tensor(engine, engine.get_tensor_name(i)) for i in range(engine.num_io_tensors)]}


def _engine_tensor(engine: trt.ICudaEngine, name: str) -> dict:
    return {"name": name, "mode": str(engine.get_tensor_mode(name)).split(".")[-1].lower(),
            "dtype": str(engine.get_tensor_dtype(name)).split(".")[-1].lower(),
            "shape": dims(engine.get_tensor_shape(name))}


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
