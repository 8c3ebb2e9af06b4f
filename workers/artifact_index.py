"""Artifacts found by a name rather than by content: derived models per
(model, precision, calibration) and timing caches per (GPU, versions).

The store is content-addressed, so the name -> sha256 mapping lives in the
artifacts table (``meta['index_key']``) that every worker shares; a local
copy under FARM_HOME/cache/<kind>/ spares the download on the next job; it
is used only while it hashes to the published sha256.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from farm.config import settings


def index_key(parts: dict) -> str:
    """Stable key of a JSON-able description (sorted keys, no spaces)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def local_path(kind: str, key: str, suffix: str) -> Path:
    return settings().home / "cache" / kind / f"{key}{suffix}"


def lookup(kind: str, key: str) -> str | None:
    """sha256 of the newest artifact published under (kind, key), if any."""
    from sqlalchemy import select

    from farm.db import Artifact, session_scope

    with session_scope() as session:
        rows = session.scalars(select(Artifact).where(Artifact.kind == kind).order_by(Artifact.created_at.desc()))
        for row in rows:
            if (row.meta or {}).get("index_key") == key:
                return row.sha256
    return None


def publish(store, kind: str, key: str, path: Path, meta: dict, media_type: str) -> str:
    """Put ``path`` in the store and record it under (kind, key)."""
    from farm.db import Artifact, session_scope

    from farm.db.upsert import insert_ignoring_duplicates

    sha = store.put_file(path)
    row = {"sha256": sha, "size_bytes": path.stat().st_size, "kind": kind, "media_type": media_type,
           "meta": {**meta, "index_key": key}}
    with session_scope() as session:
        # Two workers publishing identical bytes at once: the first row wins.
        session.execute(insert_ignoring_duplicates(session, Artifact, row, "sha256"))
    return sha


def fetch(store, kind: str, key: str, suffix: str) -> Path | None:
    """The local copy of (kind, key), verified against the hash published
    for it (a copy edited since, or older than the newest publication, is
    downloaded again); None if nobody has published it."""
    from workers.verified_files import matches

    target = local_path(kind, key, suffix)
    sha = lookup(kind, key)
    if sha is None:
        return None
    if matches(target, sha):
        return target
    if not store.exists(sha):
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    return store.get_file(sha, target)


def write_local(kind: str, key: str, suffix: str, data: bytes) -> Path:
    """Atomically replace the local copy (readers never see half a file)."""
    target = local_path(kind, key, suffix)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, target)
    return target


@contextmanager
def locked(kind: str, key: str) -> Iterator[None]:
    """This host's lock on one shared cache (``kind``, ``key``): workers
    merging into it one at a time, so no merge drops another's entries."""
    path = local_path(kind, key, ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
