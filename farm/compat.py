"""Will an artifact run on a device? Engines record where they run
(``build_info['runs_on']``: compute capabilities, whether newer ones are
allowed (hardware compatibility), the runtime library, its version and how
exactly it must match, version compatibility); other artifacts (ONNX
models) run anywhere their backend does.

The device is a dict in the shape a worker registers it (workers/serve.py):
kind, name, device_class, compute_capability and ``versions.libraries``
(distribution -> version); ``farm fetch`` builds one for this host, for a
named device class or for ``--target sm_89``.
"""

from __future__ import annotations


def _cc_tuple(text: str) -> tuple[int, int]:
    major, _, minor = str(text).partition(".")
    return int(major), int(minor or 0)


def sm(cc: str | None) -> str:
    """``8.9`` -> ``sm_89``."""
    if not cc:
        return "an unknown compute capability"
    major, minor = _cc_tuple(cc)
    return f"sm_{major}{minor}"


def parse_target(text: str) -> str:
    """``sm_89``, ``sm89``, ``89`` or ``8.9`` -> ``8.9``; ValueError otherwise."""
    value = text.strip().lower().removeprefix("sm_").removeprefix("sm")
    if "." in value:
        major, minor = value.split(".", 1)
    elif value.isdigit() and len(value) >= 2:
        major, minor = value[:-1], value[-1]
    else:
        raise ValueError(text)
    if not (major.isdigit() and minor.isdigit()):
        raise ValueError(text)
    return f"{int(major)}.{int(minor)}"


def library_version(device: dict, library: str) -> str | None:
    return ((device.get("versions") or {}).get("libraries") or {}).get(library)


def runs_on_cc(runs_on: dict, cc: str | None) -> bool:
    allowed = [str(c) for c in runs_on.get("compute_capabilities") or []]
    if not allowed or cc is None:
        return not allowed
    newer_ok = runs_on.get("newer_compute_capabilities", False)
    return cc in allowed or (newer_ok and _cc_tuple(cc) >= min(map(_cc_tuple, allowed)))


def incompatibility(build_info: dict, device: dict, rebuild_hint: str | None = None) -> str | None:
    """None if the artifact runs on ``device``, else one line that says what
    the engine is, what the device has, and what would run."""
    runs_on = build_info.get("runs_on") or {}
    capabilities = [str(c) for c in runs_on.get("compute_capabilities") or []]
    if not capabilities and not runs_on.get("library"):
        return None  # not an engine: an ONNX model or similar runs wherever its backend does
    library, built = runs_on.get("library"), runs_on.get("library_version")
    engine = f"built with {library} {built} for {', '.join(sm(c) for c in capabilities) or 'any GPU'}"
    if runs_on.get("newer_compute_capabilities"):
        engine += " and newer"
    where = device.get("name") or device.get("device_class") or "the device"
    hint = rebuild_hint or _hint(device)
    if device.get("kind") != "gpu":
        if runs_on.get("gpu_only", True):
            return f"the engine was {engine}; {where} is not a GPU; {hint}"
        return None
    cc = device.get("compute_capability")
    have = library_version(device, library) if library else None
    there = f"{where} has {library} {have or '(not installed)'} on {sm(cc)}"
    if cc and not runs_on_cc(runs_on, cc):
        return f"the engine was {engine}; {there}; {hint}"
    classes = runs_on.get("device_classes")
    if classes and device.get("device_class") not in classes:
        # Without a hardware compatibility level a TensorRT engine is valid
        # only on the GPU model that built it (an L40S and an RTX 6000 Ada share 8.9).
        return (f"the engine was {engine} without a hardware compatibility level, so it runs only on "
                f"{', '.join(classes)}, not {device.get('device_class')}; {hint}, or set "
                f"build.tensorrt.hardware_compatibility_level")
    if library and built and have and not versions_match(have, built, runs_on):
        return f"the engine was {engine}; {there}; {hint}, or install {library} {built} there"
    return None


def _hint(device: dict) -> str:
    target = device.get("device_class") or "the target device class"
    return f"rebuild with `farm sweep submit SPEC --device {target}`"


def versions_match(have: str, built: str, runs_on: dict) -> bool:
    """TensorRT engines load only in the version that built them
    (``version_match: exact``) unless built version-compatible; others
    need the same major.minor. A version-compatible TensorRT engine loads
    in the same or a newer release of the same major version."""
    if runs_on.get("version_compatible"):
        return str(have).split(".")[0] == str(built).split(".")[0] and _numbers(have) >= _numbers(built)
    if runs_on.get("version_match") == "exact":
        return str(have) == str(built)
    return str(have).split(".")[:2] == str(built).split(".")[:2]


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in str(version).split(".") if p.isdigit())
