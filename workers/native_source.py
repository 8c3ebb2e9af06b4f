"""The model file a job's backend reads: the converted ONNX, or the user's
own program where the backend compiles that format natively (the torch
backend and a torch.export ``.pt2``: no ONNX round trip, so PyTorch users
measure their own program).

The source's store key and format were recorded at submit time
(``models.source``, farm/sources.py); they are read once per worker process
and model, and the source is fetched (hash-verified) into the worker's cache.
"""

from __future__ import annotations

import threading
from pathlib import Path

from workers import verified_files

_SUFFIX = {"torch.export": ".pt2", "keras": ".keras", "tf-frozen-graph": ".pb", "tf-saved-model": ".tar"}
_sources: dict[str, dict | None] = {}
_lock = threading.Lock()


def model_source(model_sha256: str) -> dict | None:
    """The model's conversion record, or None for a model given as ONNX."""
    with _lock:
        if model_sha256 in _sources:
            return _sources[model_sha256]
    from sqlalchemy import select

    from farm.db import Model, session_scope

    with session_scope() as session:
        source = session.scalar(select(Model.source).where(Model.sha256 == model_sha256))
    with _lock:
        _sources[model_sha256] = source
    return source


def reads_natively(backend: str, source: dict | None) -> bool:
    from farm.backends import backend_config

    return source is not None and source.get("format") in getattr(backend_config(backend), "native_formats", ())


def backend_model_path(backend: str, model, store, cache: Path) -> Path:
    """``model`` is the job's workers.model_cache.SourceModel (the ONNX)."""
    source = model_source(model.sha256)
    if source is None or not reads_natively(backend, source):
        return model.path
    key = source["artifact_sha256"]
    path = cache / "sources" / f"{key}{_SUFFIX.get(source['format'], '')}"
    if not verified_files.matches(path, key):
        path.parent.mkdir(parents=True, exist_ok=True)
        store.get_file(key, path)  # verified by the store
    return path
