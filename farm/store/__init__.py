"""Content-addressed artifact store.

Keys are sha256 hex digests, never paths from user input; every read is
verified against its key. ``FARM_STORE_URL`` picks the implementation:
a directory (default ``FARM_HOME/artifacts``) or ``s3://bucket/prefix``.
"""

from __future__ import annotations

import re

from farm.config import settings
from farm.store.base import ArtifactStore, check_key, hash_file
from farm.store.local import LocalStore

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def open_store(url: str | None = None, patient: bool = False) -> ArtifactStore:
    """``patient``: wait (up to FARM_STORE_WAIT_S) for an S3 server that is
    unreachable instead of failing at once, as workers do mid-job."""
    url = url or settings().store_url
    if url.startswith("s3://"):
        from farm.store.s3 import S3Store

        return S3Store.from_url(url, patient=patient)
    if url.startswith("file://"):
        url = url[len("file://"):]
    return LocalStore(url)


__all__ = ["ArtifactStore", "LocalStore", "check_key", "hash_file", "open_store"]
