"""Files the CLI writes (-o): checked before any work, written atomically,
and every OS refusal (a missing or read-only directory, /proc, a full
disk) is one line that leaves nothing behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from farm.errors import UserError


def check_output(path: Path | None) -> None:
    """Refuse an -o FILE that cannot be written, before the command does its work."""
    if path is None:
        return
    parent = path.resolve().parent
    if not parent.is_dir():
        raise UserError(f"directory {path.parent} does not exist")
    if path.is_dir():
        raise UserError(f"{path} is a directory; give a file name")
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write to directory {path.parent} (permission denied)")


def write_output(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory."""
    payload = data.encode() if isinstance(data, str) else data
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.resolve().parent, prefix=f".{path.name}.", suffix=".partial")
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def written_by(path: Path, write) -> None:
    """Let ``write(tmp_path)`` produce the file (e.g. pandas' to_parquet), atomically."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.resolve().parent, prefix=f".{path.name}.", suffix=".partial")
        os.close(fd)
        write(Path(tmp))
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp and Path(tmp).exists():
            Path(tmp).unlink(missing_ok=True)
