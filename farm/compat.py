"""Will an artifact run on a device? Engines record where they run
(``build_info['runs_on']``: compute capabilities and the runtime library's
version); other artifacts (ONNX models) run anywhere their backend does."""

from __future__ import annotations


def _cc_tuple(text: str) -> tuple[int, int]:
    major, _, minor = str(text).partition(".")
    return int(major), int(minor or 0)


def incompatibility(build_info: dict, device: dict) -> str | None:
    """None if the artifact runs on ``device`` (a devices-table row as dict),
    else a one-line reason that says what would run."""
    runs_on = build_info.get("runs_on") or {}
    capabilities = runs_on.get("compute_capabilities")
    if capabilities and device.get("kind") == "gpu":
        cc = device.get("compute_capability")
        allowed = [str(c) for c in capabilities]
        newer_ok = runs_on.get("newer_compute_capabilities", False)
        fits = cc in allowed or (newer_ok and cc and _cc_tuple(cc) >= max(map(_cc_tuple, allowed)))
        if cc and not fits:
            return (f"the engine runs on compute capability {', '.join(allowed)}, but {device.get('name')} "
                    f"has {cc}; build it for {device.get('device_class')} (a sweep with devices: "
                    f"[{device.get('device_class')}])")
    classes = runs_on.get("device_classes")
    if classes and device.get("kind") == "gpu" and device.get("device_class") not in classes:
        return (f"the engine was built without a hardware compatibility level, so it runs only on "
                f"{', '.join(classes)}, not {device.get('device_class')}; build it there, or set "
                f"build.tensorrt.hardware_compatibility_level")
    if capabilities and device.get("kind") == "cpu" and runs_on.get("gpu_only", True):
        return f"the engine needs a GPU of compute capability {', '.join(map(str, capabilities))}; this is a CPU"
    library, version = runs_on.get("library"), runs_on.get("library_version")
    have = (device.get("versions") or {}).get(library) if library else None
    if library and version and have and not _versions_match(have, version, runs_on):
        return (f"the engine was built with {library} {version}, the device has {library} {have}; "
                f"rebuild with {library} {have} or install {library} {version}")
    return None


def _versions_match(have: str, built: str, runs_on: dict) -> bool:
    """TensorRT engines load only in the version that built them
    (``version_match: exact``) unless built version-compatible; others
    need the same major.minor."""
    if runs_on.get("version_compatible"):
        return True
    if runs_on.get("version_match") == "exact":
        return str(have) == str(built)
    return _same_major_minor(have, built)


def _same_major_minor(a: str, b: str) -> bool:
    return str(a).split(".")[:2] == str(b).split(".")[:2]
