from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from farm.errors import ArtifactMissingError, EnvironmentFault
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
        """Store ``path``'s bytes under their hash. An object already there
        is verified first: a corrupt one (bit rot, an edit) is replaced."""
        key = hash_file(Path(path))
        target = self._path(key)
        if target.is_file() and self._intact(target, key, Path(path)):
            return key
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        except OSError as exc:
            raise EnvironmentFault(f"cannot write to the artifact store at {self.root}: {exc.strerror or exc}") from None
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return key

    @staticmethod
    def _intact(target: Path, key: str, source: Path) -> bool:
        # The size is free to compare; only an object of the right size is hashed.
        return target.stat().st_size == source.stat().st_size and hash_file(target) == key

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _fetch_to(self, key: str, dest: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise ArtifactMissingError(f"artifact {key} is not in the store at {self.root}")
        shutil.copyfile(source, dest)

    def local_path(self, key: str) -> Path:
        """Path of the stored object (for zero-copy reads by trusted code)."""
        return self._path(key)
