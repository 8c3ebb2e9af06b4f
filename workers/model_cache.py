"""A job's model, prepared once per worker process.

Every job of a sweep runs the same model, often dozens of times on one
worker. Fetching it, normalising it (workers/onnx_quirks.py), reading its
inputs and computing the fp32 reference outputs the accuracy check compares
against are done once per worker process and kept here; each later job only
re-checks that the cached files are the ones verified (a stat, see
workers/verified_files.py). The ModelInfo a job gets names the job's model
by the sha256 it was submitted with, even when backends read the normalised
copy, so everything derived from it (prepared precisions, engine metadata)
cites that model.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from farm.model_info import ModelInfo, read_model
from workers import verified_files
from workers.onnx_quirks import normalized_model

_MODELS_KEPT = 4
_REFERENCE_BYTES = 256 << 20  # reference outputs kept per worker (they are small next to models)


@dataclass
class SourceModel:
    sha256: str  # the job's model, as submitted
    artifact_sha256: str  # its store key (the bytes fetched)
    fetched: Path  # the verified copy of the submitted graph
    path: Path  # what backends read: ``fetched`` or its normalised copy
    info: ModelInfo  # read from ``path``, sha256 = the job's model
    # Every fetched file with its hash: the graph (or the manifest of one with external data,
    # farm/model_bundle.py) and the data files beside it.
    parts: tuple[tuple[Path, str], ...] = ()

    def still_intact(self) -> bool:
        parts = self.parts or ((self.fetched, self.artifact_sha256),)
        if not all(verified_files.matches(path, sha) for path, sha in parts):
            return False
        return self.path == self.fetched or verified_files.intact(
            self.path, source_sha256=self.artifact_sha256)


_models: OrderedDict[str, SourceModel] = OrderedDict()
_lock = threading.Lock()


def source_model(sha256: str, artifact_sha256: str, store, cache: Path) -> SourceModel:
    """The job's model: from this process's memory while its files are
    intact, else fetched (hash-verified), normalised and read again."""
    with _lock:
        entry = _models.get(sha256)
        if entry is not None and entry.still_intact():
            _models.move_to_end(sha256)
            return entry
        entry = _prepare(sha256, artifact_sha256, store, cache)
        _models[sha256] = entry
        while len(_models) > _MODELS_KEPT:
            _forget(_models.popitem(last=False)[0])
        return entry


def _prepare(sha256: str, artifact_sha256: str, store, cache: Path) -> SourceModel:
    fetched, parts = _fetch(artifact_sha256, store, cache / "models", sha256)
    path = normalized_model(fetched, source_sha256=artifact_sha256)
    info = replace(read_model(path), sha256=sha256)
    return SourceModel(sha256, artifact_sha256, fetched, path, info, parts)


def _fetch(key: str, store, models: Path, sha256: str) -> tuple[Path, tuple[tuple[Path, str], ...]]:
    """(the graph to read, every file with its hash). A one-file model is
    ``<sha>.onnx``; one with external data (farm/model_bundle.py) is its
    manifest ``<sha>.manifest.json`` and a folder ``<sha>/`` holding
    ``model.onnx`` and the data files at their locations, each file fetched
    hash-verified by the store and re-checked before use."""
    from farm.model_bundle import GRAPH_NAME, parse_manifest

    plain, listed = models / f"{sha256}.onnx", models / f"{sha256}.manifest.json"
    if not verified_files.matches(listed, key) and not verified_files.matches(plain, key):
        models.mkdir(parents=True, exist_ok=True)
        temp = models / f".{sha256}.{os.getpid()}.fetching"
        store.get_file(key, temp)  # verified by the store
        with open(temp, "rb") as head:
            is_manifest = head.read(1) == b"{"  # an ONNX file starts with a protobuf tag, never "{"
        os.replace(temp, listed if is_manifest and parse_manifest(temp.read_bytes()) is not None else plain)
    if not listed.exists() or not verified_files.matches(listed, key):
        return plain, ((plain, key),)
    body = parse_manifest(listed.read_bytes())  # locations checked: files land only inside the folder
    folder = models / sha256
    parts = [(listed, key), (folder / GRAPH_NAME, body["graph"])]
    parts += [(folder / entry["location"], entry["sha256"]) for entry in body["data"]]
    for path, sha in parts[1:]:
        if not verified_files.matches(path, sha):
            path.parent.mkdir(parents=True, exist_ok=True)
            store.get_file(sha, path)
    return folder / GRAPH_NAME, tuple(parts)


# -- fp32 reference outputs -----------------------------------------------

_references: OrderedDict[tuple, dict[str, np.ndarray]] = OrderedDict()
_sessions: dict[str, object] = {}


def reference_key(model: SourceModel, data_sha256: str | None, shapes: dict[str, tuple[int, ...]]) -> tuple:
    """The measurement feeds are a function of the model, the user's data
    and the run shapes (workers/inputs.py), so this names their outputs."""
    return (model.sha256, str(model.path), data_sha256, tuple(sorted(shapes.items())))


def reference_outputs(model: SourceModel, key: tuple, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """ONNX Runtime fp32 outputs of ``model`` for ``feeds`` (named by ``key``)."""
    with _lock:
        cached = _references.get(key)
        if cached is not None:
            _references.move_to_end(key)
            return cached
    outputs = _run_reference(model, feeds)
    with _lock:
        _references[key] = outputs
        while len(_references) > 1 and sum(_nbytes(v) for v in _references.values()) > _REFERENCE_BYTES:
            _references.popitem(last=False)
    return outputs


def _run_reference(model: SourceModel, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = _sessions.get(model.sha256)
    if session is None:
        # One session per model (the newest only: a large model's session
        # holds its weights in memory).
        _sessions.clear()
        session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
        _sessions[model.sha256] = session
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def _nbytes(outputs: dict[str, np.ndarray]) -> int:
    return sum(getattr(v, "nbytes", 0) for v in outputs.values())


def _forget(sha256: str) -> None:
    _sessions.pop(sha256, None)
    for key in [k for k in _references if k[0] == sha256]:
        del _references[key]


def clear() -> None:
    """Forget everything (tests; a worker never needs to)."""
    with _lock:
        _models.clear()
        _references.clear()
        _sessions.clear()
