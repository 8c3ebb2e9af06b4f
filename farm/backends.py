"""Backend plugins as the coordinator sees them.

Backends register under the ``engine_farm.backends`` entry-point group. The
entry point names a small *config* class (a dataclass of build knobs, every
knob optional = "the backend's default") that imports nothing heavy. The
device-side implementation is named by ``implementation`` and imported only
by a worker that runs the job.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import logging
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from farm.errors import MissingDependencyError, SpecError
from farm.optional import install_hint

GROUP = "engine_farm.backends"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendConfig:
    """Base of every backend's build configuration (data, as in Polygraphy)."""

    name: ClassVar[str] = ""
    implementation: ClassVar[str] = ""  # "module:Class" of the device-side backend
    distribution: ClassVar[str | None] = None  # PyPI distribution whose version is the backend's
    requires: ClassVar[tuple[str, ...]] = ()  # importable modules a worker needs (any one of each tuple item
    # may be "a|b" meaning either a or b)
    # What the backend can do; read only through capabilities() (one Capabilities per backend).
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    device_kinds: ClassVar[tuple[str, ...]] = ("cpu",)  # where the backend can measure
    build_anywhere: ClassVar[bool] = False  # builds are device-independent (CPU-only AOT)
    verified: ClassVar[str | None] = None  # what the project has (and has not) run of it, shown by `farm backends`
    environment_libraries: ClassVar[tuple[str, ...]] = ()  # more distributions a result depends on
    version_parts: ClassVar[int] = 3  # leading version components that make "the same" library
    # GPU compute capabilities its engines can target ("12.x": any 12 minor); () = any the library takes
    target_compute_capabilities: ClassVar[tuple[str, ...]] = ()
    # precision -> the lowest compute capability with kernels for it (e.g. fp8 from 8.9 on)
    precision_min_compute_capability: ClassVar[dict[str, str]] = {}
    # Source formats (farm/sources.py) the backend compiles itself, from the user's file rather than the
    # converted ONNX (workers/native_source.py)
    native_formats: ClassVar[tuple[str, ...]] = ()
    # What the stored artifact is, as a file name ending: the winner sentence and fetch hints name files by it.
    artifact_suffix: ClassVar[str] = ".bin"
    # Measures several streams at once (measure.streams > 1: one model copy and stream each); the
    # runner's ``multi_stream`` must say the same (tests/test_capabilities_streams.py checks both).
    multi_stream: ClassVar[bool] = False

    @classmethod
    def capabilities(cls) -> "Capabilities":
        from farm.capabilities import Capabilities

        # (name, distributions): the backend's own library under the backend's name, as engines record it.
        libraries = (((cls.name, cls.distribution),) if cls.distribution else ()) + tuple(
            (dist.split("|")[0], dist) for dist in cls.environment_libraries)
        return Capabilities(backend=cls.name, precisions=tuple(cls.precisions), device_kinds=tuple(cls.device_kinds),
                            build_anywhere=cls.build_anywhere, libraries=libraries, version_parts=cls.version_parts,
                            compute_capabilities=tuple(cls.target_compute_capabilities),
                            precision_min_cc=tuple(sorted(cls.precision_min_compute_capability.items())),
                            multi_stream=cls.multi_stream)

    @classmethod
    def refuses_model(cls, model: Any, device_kind: str, build: dict[str, Any]) -> str | None:
        """Why this backend cannot take ``model`` (farm.model_info.ModelInfo)
        on a device of ``device_kind`` with the sweep's ``build`` knobs, in
        one line; None when it can. Checked at submit for every (backend,
        device kind) of the sweep. By default a custom operator is refused
        (backends that load plugins override this)."""
        if model.custom_ops:
            more = len(model.custom_ops) - 1
            return (f"{model.custom_ops[0]} is a custom operator{f' (and {more} more)' if more else ''}, which "
                    f"{cls.name} has no kernel for")
        return None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "build") -> "BackendConfig":
        """Knobs checked against their declarations (farm.knobs: type, range, allowed values)."""
        from farm.knobs import check_knobs

        data = dict(data or {})
        check_knobs(cls, data, where)
        return cls(**data)

    @classmethod
    def tuned_build(cls, build: dict[str, Any]) -> dict[str, Any] | None:
        """The build knobs of this backend's expensive build for a
        configuration built with ``build`` (max-autotune, the highest builder
        optimization level), made only for finalists (farm/tuned.py); None
        where the backend has none or ``build`` already is it."""
        return None

    def resolved(self) -> dict[str, Any]:
        """Knobs the user set; absent ones mean the backend's default."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def highest_level(build: dict[str, Any] | None, knob: str, default: int = 3, top: int = 5) -> dict[str, Any] | None:
    """``build`` with ``knob`` (a builder optimization level, ``default``
    when unset) raised to ``top``; None when it already is: the tuned build
    of backends whose expensive build is TensorRT's highest level."""
    if (build or {}).get(knob, default) >= top:
        return None
    return {**(build or {}), knob: top}


def _extra_entry_points(value: str) -> dict[str, metadata.EntryPoint]:
    """FARM_EXTRA_BACKENDS="name=module:ConfigClass,...": backends that are
    importable but not installed as a distribution (tests, local plugins
    under development). The coordinator and every worker need the same value."""
    extra = {}
    for item in filter(None, (p.strip() for p in value.split(","))):
        name, sep, target = item.partition("=")
        if not sep or ":" not in target or not name.strip():
            raise SpecError(f"FARM_EXTRA_BACKENDS entry {item!r} is not name=module:ConfigClass")
        if name.strip() in extra:
            raise SpecError(f"FARM_EXTRA_BACKENDS names backend {name.strip()!r} twice; give each name once")
        extra[name.strip()] = metadata.EntryPoint(name.strip(), target.strip(), GROUP)
    return extra


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return _entry_points_for(os.environ.get("FARM_EXTRA_BACKENDS", ""))


@functools.lru_cache(maxsize=4)
def _entry_points_for(extra: str) -> dict[str, metadata.EntryPoint]:
    # Read once per process: scanning every installed distribution's entry
    # points took ~3 ms, a third of a short job's farm overhead when the
    # worker looked its backend up per job. A process imports a backend
    # once, so a plugin installed later needs a new process anyway.
    return {**{ep.name: ep for ep in metadata.entry_points(group=GROUP)}, **_extra_entry_points(extra)}


def backend_names() -> list[str]:
    return sorted(_entry_points())


def backend_config(name: str) -> type[BackendConfig]:
    entry = _entry_points().get(name)
    if entry is None:
        allowed = ", ".join(backend_names()) or "none installed"
        raise SpecError(f"unknown backend {name!r} (allowed: {allowed})")
    return _load(entry)


def _load(entry: metadata.EntryPoint) -> type[BackendConfig]:
    """The config class an entry point names; a plugin that does not load
    or is not a BackendConfig is one line naming where it came from."""
    loaded, problem = _try_load(entry)
    if problem:
        where = (f"FARM_EXTRA_BACKENDS entry '{entry.name}={entry.value}'" if entry.dist is None
                 else f"backend {entry.name!r} (entry point {entry.value})")
        raise SpecError(f"{where} {problem}")
    return loaded


def _try_load(entry: metadata.EntryPoint) -> tuple[type[BackendConfig] | None, str | None]:
    try:
        loaded = entry.load()
    except Exception as exc:  # ImportError, AttributeError, or the plugin's own import-time error
        return None, f"cannot be loaded: {type(exc).__name__}: {exc}"
    if not (isinstance(loaded, type) and issubclass(loaded, BackendConfig)):
        return None, f"names {loaded!r}, which is not a farm.backends.BackendConfig subclass"
    return loaded, None


def _importable(module: str) -> bool:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if spec.origin is None and spec.submodule_search_locations is not None:
        # A namespace package: real only if it holds code. Type-stub
        # packages such as tensorrt-stubs install a bare tensorrt/__init__.pyi.
        return any(_holds_code(Path(p)) for p in spec.submodule_search_locations)
    return True


def _holds_code(directory: Path) -> bool:
    return any(p.is_dir() or p.suffix in (".py", ".so", ".pyd") for p in directory.iterdir())


def missing_requirements(name: str) -> list[str]:
    """Requirements of ``name`` not importable here (without importing them)."""
    missing = []
    for requirement in backend_config(name).requires:
        options = requirement.split("|")
        if not any(_importable(module) for module in options):
            missing.append(" or ".join(options))
    return missing


def require_local(name: str) -> None:
    missing = missing_requirements(name)
    if missing:
        raise MissingDependencyError(f"backend {name!r} needs the Python package {missing[0]}, which is not "
                                     f"installed here: {install_hint(missing[0].split(' or ')[0])}")


def distribution_version(distributions: str) -> str | None:
    """Installed version of the first of ``a|b|c`` found here (no import)."""
    for candidate in distributions.split("|"):
        try:
            return metadata.version(candidate)
        except metadata.PackageNotFoundError:
            continue
    return None


def backend_version(name: str) -> str:
    dist = backend_config(name).distribution
    return (distribution_version(dist) if dist else None) or "unknown"


def library_versions(names) -> dict[str, str]:
    """library -> installed version for every library the backends' results
    depend on (keys as Capabilities.environment reads them)."""
    versions: dict[str, str] = {}
    for name in names:
        for library, distributions in backend_config(name).capabilities().libraries:
            found = distribution_version(distributions)
            if found:
                versions[library] = found
    return versions


def backend_errors() -> dict[str, str]:
    """Backends whose plugin fails to load here, with the error (each is logged)."""
    errors = {}
    for name in backend_names():
        _, problem = _try_load(_entry_points()[name])
        if problem:
            errors[name] = problem.removeprefix("cannot be loaded: ").splitlines()[0]
            log.warning("backend plugin %r cannot be loaded: %s", name, errors[name])
    return errors


def local_backends(device_kind: str) -> list[str]:
    """Backends a worker on this host can work for with a ``device_kind``
    device: installed (their packages importable) and able to measure on
    that kind or build anywhere. Broken plugins are skipped (and logged by
    backend_errors, which the worker records on its device row)."""
    usable = []
    for name in backend_names():
        try:
            caps = backend_config(name).capabilities()
        except Exception:  # a broken plugin must not take the worker down
            continue
        if (device_kind in caps.device_kinds or caps.build_anywhere) and not missing_requirements(name):
            usable.append(name)
    return usable
