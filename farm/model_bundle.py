"""ONNX models whose tensors live in external data files, as one model.

An ONNX graph may keep its weights beside it (``external_data`` entries
naming a ``location`` relative to the graph's folder): torch's dynamo
exporter does so by default, and every model past protobuf's 2 GB limit
must. The farm treats graph + data files as one model:

- **checked** before anything is read: every location must stay inside the
  graph's folder (no absolute path, no ``..`` component, no symbolic link
  leading out) and name a regular file; otherwise one ``Error:`` line and
  no data file is opened;
- **content-addressed as one**: a small JSON manifest lists the graph's
  sha256 and each data file's location, sha256 and size; the model's sha256
  is the manifest's (so it changes with any of its files), and the
  manifest is what the store keeps under that key, next to each file under
  its own hash;
- **shipped and verified**: a worker fetches the manifest, then each file
  (every one hash-verified by the store), into one folder of its cache,
  with the data files at their locations beside ``model.onnx``, where
  every backend's ONNX reader resolves them (ONNX Runtime, onnx.load,
  TensorRT's parser).

A model without external data keeps the sha256 of its one file, as before.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from farm.errors import ModelError

MAGIC = "engine-farm-model"
VERSION = 1
GRAPH_NAME = "model.onnx"  # the graph's name in a worker's folder (its own name is not part of the model)


@dataclass(frozen=True)
class DataFile:
    location: str  # as the graph names it, relative to the graph's folder
    path: Path  # where it is on this host
    sha256: str
    size: int


def _tensors(graph):
    """Every tensor of a graph that can hold external data: initializers,
    sparse initializers' parts, and node attributes (subgraphs included)."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for sub in attribute.graphs:
                yield from _tensors(sub)


def external_locations(proto) -> list[str]:
    """The distinct data file locations the model's tensors name, in first-use order."""
    from onnx import TensorProto

    seen: list[str] = []
    for tensor in _tensors(proto.graph):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        entries = {entry.key: entry.value for entry in tensor.external_data}
        location = entries.get("location", "")
        if location not in seen:
            seen.append(location)
    return seen


def check_location(graph_path: Path, location: str) -> Path:
    """The data file ``location`` names, if it lies inside the graph's folder;
    else one ModelError, before any data file is opened."""
    where = f"{graph_path}: external data location {location!r}"
    if not location or "\0" in location:
        raise ModelError(f"{where} is empty or not a file name")
    parts = location.replace("\\", "/").split("/")
    if location.startswith(("/", "\\")) or os.path.isabs(location) or (len(location) > 1 and location[1] == ":"):
        raise ModelError(f"{where} is an absolute path; the farm reads data files only inside the model's folder")
    if ".." in parts:
        raise ModelError(f"{where} leads out of the model's folder ('..'); the farm reads data files only "
                         "inside it")
    folder = graph_path.parent.resolve()
    target = (graph_path.parent / location).resolve()  # follows links, reads no file's content
    if target != folder and folder not in target.parents:
        raise ModelError(f"{where} is a link leading out of the model's folder (to {target}); the farm reads "
                         "data files only inside it")
    if not target.is_file():
        raise ModelError(f"{where}: no such data file beside the model" if not target.exists()
                         else f"{where} is not a regular file")
    return target


def data_files(graph_path: Path, locations: list[str]) -> tuple[DataFile, ...]:
    """Every location checked first, then each file hashed."""
    from farm.store.base import hash_file

    targets = [(location, check_location(graph_path, location)) for location in locations]
    return tuple(DataFile(location, target, hash_file(target), target.stat().st_size)
                 for location, target in targets)


def manifest(graph_sha256: str, files: tuple[DataFile, ...]) -> bytes:
    """The model's identity and store manifest (canonical JSON: its sha256 is the model's)."""
    body = {MAGIC: VERSION, "graph": graph_sha256,
            "data": [{"location": f.location, "sha256": f.sha256, "size": f.size}
                     for f in sorted(files, key=lambda f: f.location)]}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def parse_manifest(raw: bytes) -> dict | None:
    """The manifest in ``raw`` (None: ``raw`` is not one, e.g. an ONNX file),
    its locations checked again: a worker writes files only inside its folder."""
    if not raw.startswith(b"{"):
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get(MAGIC) != VERSION:
        return None
    for entry in body.get("data", []):
        location = entry["location"]
        path = PurePosixPath(location.replace("\\", "/"))
        if (not location or path.is_absolute() or ".." in path.parts or location[1:2] == ":"
                or location == GRAPH_NAME):
            raise ModelError(f"model manifest names a data location outside its folder: {location!r}")
    return body


def put_model(store, model) -> str:
    """Store a model (``farm.model_info.ModelInfo``); returns its store key
    (for one with external data: every file, then its manifest)."""
    if not model.data_files:
        return store.put_file(model.path)
    graph_key = store.put_file(model.path)
    for data in model.data_files:
        key = store.put_file(data.path)
        if key != data.sha256:  # changed since it was read: the model is not what was checked
            raise ModelError(f"{data.path} changed while the sweep was submitted; submit it again")
    key = store.put_bytes(manifest(graph_key, model.data_files))
    if key != model.sha256:  # the graph changed since it was read
        raise ModelError(f"{model.path} changed while the sweep was submitted; submit it again")
    return key
