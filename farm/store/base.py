from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from pathlib import Path

from farm.errors import StoreIntegrityError

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def check_key(key: str) -> str:
    """Refuse anything that is not a sha256 hex digest (no paths, no '..')."""
    if not isinstance(key, str) or not _HEX64.match(key):
        raise ValueError(f"artifact keys are sha256 hex digests, got {key!r}")
    return key


def hash_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class ArtifactStore(ABC):
    """put_* return the content hash; get_* verify it before returning."""

    @abstractmethod
    def put_file(self, path: Path) -> str: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def _fetch_to(self, key: str, dest: Path) -> None: ...

    def check(self) -> None:
        """Raise a UserError when the store cannot be used right now."""

    def put_bytes(self, data: bytes) -> str:
        import tempfile

        with tempfile.NamedTemporaryFile(delete=False) as handle:
            handle.write(data)
        try:
            return self.put_file(Path(handle.name))
        finally:
            Path(handle.name).unlink(missing_ok=True)

    def get_file(self, key: str, dest: Path) -> Path:
        """Copy the artifact to ``dest`` (atomically) after checking its hash."""
        import os
        import tempfile

        check_key(key)
        dest = Path(dest)
        # A temp name of its own: workers on one host fetch the same model
        # into one shared cache at the same time.
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
        os.close(fd)
        tmp = Path(name)
        try:
            self._fetch_to(key, tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        actual = hash_file(tmp)
        if actual != key:
            tmp.unlink(missing_ok=True)
            raise StoreIntegrityError(f"artifact {key} is corrupt in the store (content hashes to {actual})")
        tmp.replace(dest)
        return dest

    def get_bytes(self, key: str) -> bytes:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            return self.get_file(key, Path(tmp) / "artifact").read_bytes()
