"""Models as users have them: ONNX, a torch.export program (``.pt2``), a
Keras 3 file (``.keras``), a TensorFlow SavedModel directory or frozen graph
(``.pb``). Every non-ONNX model is converted to ONNX once, by its format's
own exporter (converters/), in a subprocess: the coordinator never imports
torch, TensorFlow or Keras.

The farm's model is then the pair (source, converter): its sha256 hashes the
source's content hash with the converter's name and versions, so jobs are
keyed on both and a new exporter version is a new model, never a silent
reuse. The converted ONNX and the conversion record (versions, opset,
parity with the source framework) are kept under ``FARM_HOME/converted/``
and reused while the same converter versions are installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import replace
from pathlib import Path

from farm.errors import MissingDependencyError, ModelError
from farm.model_info import ModelInfo, read_model
from farm.store.base import hash_file

CONVERT_TIMEOUT_S = 1800.0  # FARM_CONVERT_TIMEOUT_S; a large program's export takes minutes


def is_saved_model(path: Path) -> bool:
    return path.is_dir() and ((path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file())


def source_format(path: Path) -> str:
    """``onnx`` or one of converters.FORMATS, told from the path (a
    directory holding saved_model.pb is a SavedModel)."""
    if path.is_dir():
        if is_saved_model(path):
            return "tf-saved-model"
        raise ModelError(f"{path} is a directory, not a model file (a directory is read as a TensorFlow "
                         f"SavedModel only with saved_model.pb in it)")
    suffix = path.suffix.lower()
    return {".pt2": "torch.export", ".keras": "keras", ".pb": "tf-frozen-graph"}.get(suffix, "onnx")


def open_model(path: str | Path, data: Path | None = None, shapes: dict | None = None) -> ModelInfo:
    """The ModelInfo the farm sweeps for ``path``: ONNX as it is, any other
    format converted (once) to ONNX, with ``source`` saying what was done.
    ``data`` and ``shapes`` (input -> opt shape) feed the one parity check."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if path.name == "saved_model.pb" and path.is_file():
        path = path.parent  # the SavedModel is the directory (variables/ and assets/ beside the graph)
    fmt = source_format(path)
    if fmt == "onnx":
        return read_model(path)
    return _converted(path, fmt, data, shapes)


def converter_identity(fmt: str) -> dict:
    """The converter's name and installed versions (from package metadata;
    nothing imported). A missing one is the user's one-line error."""
    from converters import CONVERTERS, versions

    converter = CONVERTERS[fmt]
    found = versions(converter.versioned)
    missing = [name for name, version in found.items() if version is None or not _importable(name)]
    if missing:
        raise MissingDependencyError(
            f"converting a {fmt} model needs {', '.join(missing)}, which is not installed here: "
            f"pip install 'engine-farm[{converter.extra}]'")
    return {"format": fmt, "converter": converter.name, "versions": found}


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None  # finds, never imports
    except (ImportError, ValueError):
        return False


def model_identity(source_sha256: str, identity: dict) -> str:
    canonical = json.dumps({"source_sha256": source_sha256, **identity}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def source_digest(path: Path) -> str:
    """Content hash of the user's model: the file's sha256, or for a
    directory the sha256 of its deterministic tar (source_archive)."""
    if path.is_dir():
        return hash_file(source_archive(path))
    return hash_file(path)


def source_archive(path: Path) -> Path:
    """The file the store keeps for ``path``: the file itself, or for a
    directory a tar of it with sorted names, zero times and owners (the same
    directory always gives the same bytes)."""
    if not path.is_dir():
        return path
    home = _cache_root() / "archives"
    home.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=home, suffix=".tar.partial")
    os.close(fd)
    with tarfile.open(name, "w", format=tarfile.PAX_FORMAT) as tar:
        for member in sorted(p for p in path.rglob("*")):
            info = tar.gettarinfo(str(member), arcname=str(member.relative_to(path)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o755 if member.is_dir() else 0o644
            if member.is_file():
                with open(member, "rb") as handle:
                    tar.addfile(info, handle)
            elif member.is_dir():
                tar.addfile(info)
    digest = hash_file(Path(name))
    final = home / f"{digest}.tar"
    Path(name).replace(final)
    return final


def _cache_root() -> Path:
    from farm.config import settings

    return settings().home / "converted"


def _converted(path: Path, fmt: str, data: Path | None, shapes: dict | None) -> ModelInfo:
    identity = converter_identity(fmt)
    archive = source_archive(path)
    source_sha256 = hash_file(archive)
    sha256 = model_identity(source_sha256, identity)
    folder = _cache_root() / sha256
    onnx_path, record_path = folder / "model.onnx", folder / "record.json"
    record = _cached_record(onnx_path, record_path)
    if record is None:
        folder.mkdir(parents=True, exist_ok=True)
        # In a folder of its own: shells converting the same new model at once never mix their files.
        with tempfile.TemporaryDirectory(dir=folder, prefix=".converting-") as work:
            record = _run_converter(path, fmt, Path(work), data, shapes)
            record["onnx_sha256"] = hash_file(Path(work) / "model.onnx")
            (Path(work) / "record.json").write_text(json.dumps(record, indent=1))
            for made in sorted(Path(work).iterdir()):  # the model (and any external data files) first
                if made.name != "record.json":
                    os.replace(made, folder / made.name)
            os.replace(Path(work) / "record.json", record_path)  # a record always names a model in place
    if data is not None and record.get("parity", {}).get("inputs") != "data":
        record = {**record, "parity": _data_parity(path, fmt, folder, Path(data), shapes)}
    source = {**record, "name": path.name, "path": str(path.resolve()), "sha256": source_sha256,
              "archive": str(archive), "directory": path.is_dir()}
    _check_parity(path, source)
    return replace(read_model(onnx_path), sha256=sha256, source=source)


def _data_parity(path: Path, fmt: str, folder: Path, data: Path, shapes: dict | None) -> dict:
    """The parity of the kept conversion on the spec's data, once per data
    file (``parity-<data sha256>.json`` beside the record): a model first
    converted without data was checked on example or synthetic inputs."""
    kept = folder / f"parity-{hash_file(data)}.json"
    try:
        return json.loads(kept.read_text())
    except (OSError, ValueError):
        pass
    with tempfile.TemporaryDirectory(dir=folder, prefix=".parity-") as work:
        result = _run_converter(path, fmt, Path(work), data, shapes, onnx=folder / "model.onnx")["parity"]
        (Path(work) / "parity.json").write_text(json.dumps(result, indent=1))
        os.replace(Path(work) / "parity.json", kept)
    return result


def _cached_record(onnx_path: Path, record_path: Path) -> dict | None:
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return None
    if not onnx_path.is_file() or record.get("onnx_sha256") != hash_file(onnx_path):
        return None
    return record


def _run_converter(path: Path, fmt: str, folder: Path, data: Path | None, shapes: dict | None,
                   onnx: Path | None = None) -> dict:
    """Convert into ``folder``; with ``onnx``, only check that conversion's parity."""
    record_path = folder / "record.json.partial"
    command = [sys.executable, "-m", "converters", "--format", fmt, "--source", str(path.resolve()),
               "--out", str(onnx or folder / "model.onnx"), "--record", str(record_path)]
    if onnx is not None:
        command.append("--parity-only")
    if data is not None:
        command += ["--data", str(Path(data).resolve())]
    if shapes:
        command += ["--shapes", json.dumps(shapes)]
    from farm.config import _number

    timeout = _number("FARM_CONVERT_TIMEOUT_S", CONVERT_TIMEOUT_S)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=_child_env())
    except subprocess.TimeoutExpired:
        raise ModelError(f"converting {path.name} ({fmt}) took longer than {timeout:.0f} s "
                         f"(FARM_CONVERT_TIMEOUT_S)") from None
    if done.returncode != 0 or not record_path.is_file():
        tail = "\n".join((done.stderr or "").strip().splitlines()[-25:])
        raise RuntimeError(f"the {fmt} converter crashed (exit {done.returncode}):\n{tail}")
    record = json.loads(record_path.read_text())
    record_path.unlink()
    if not record.get("ok"):
        error = MissingDependencyError if record.get("kind") == "missing" else ModelError
        raise error(record["error"])
    return record


def _child_env() -> dict:
    """The converter sees this process's import path (a checkout run with
    PYTHONPATH finds the same ``converters``) and no GPU: conversion is CPU work."""
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    return env


def _check_parity(path: Path, source: dict) -> None:
    """A converted model that computes something else than its source is
    refused: every verdict the farm gives is against the converted model."""
    parity = source.get("parity") or {}
    if parity.get("pass"):
        return
    worst: tuple[str | None, dict] = max((parity.get("outputs") or {}).items(), default=(None, {}),
                key=lambda item: item[1].get("rel_l2_error") or float("inf"))
    where = f" on output '{worst[0]}' (rel L2 {worst[1].get('rel_l2_error')}, cosine {worst[1].get('cosine')})" \
        if worst[0] else f": {parity.get('reason', 'no parity figures')}"
    raise ModelError(f"{source['converter']} ({versions_text(source)}) changed what {path.name} computes"
                     f"{where} on {parity.get('inputs', 'its inputs')}; the farm measures only a converted model "
                     f"that matches its source")


def versions_text(source: dict) -> str:
    return ", ".join(f"{name} {version}" for name, version in (source.get("versions") or {}).items())


def describe(source: dict) -> str:
    """One line: what was converted, by what, and its parity."""
    parity = source.get("parity") or {}
    rel = parity.get("rel_l2_error")
    figures = (f"max abs error {parity.get('max_abs_error'):.3g}, rel L2 {rel:.3g}" if rel is not None
               else "no parity figures")
    inputs = ("synthetic inputs (not the model's real ones: a spec's data is checked when given)"
              if parity.get("synthetic") else {"data": "the spec's data"}.get(parity.get("inputs"),
                                                                             parity.get("inputs", "?")))
    return (f"converted {source['name']} ({source['format']}) to ONNX opset {source.get('opset')} with "
            f"{source['converter']} ({versions_text(source)}); parity with the source: {figures} on {inputs}")
