from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from farm.store.base import ArtifactStore, check_key, hash_file


class LocalStore(ArtifactStore):
    """Objects live at ``root/ab/cdef...``; writes go through a temp file and
    an atomic rename, so a crash never leaves a half-written object."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key[2:]

    def put_file(self, path: Path) -> str:
        key = hash_file(Path(path))
        target = self._path(key)
        if target.exists():
            return key
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        os.close(fd)
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
        return key

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _fetch_to(self, key: str, dest: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise FileNotFoundError(f"artifact {key} is not in the store at {self.root}")
        shutil.copyfile(source, dest)

    def local_path(self, key: str) -> Path:
        """Path of the stored object (for zero-copy reads by trusted code)."""
        return self._path(key)
