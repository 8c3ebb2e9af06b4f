"""Files the CLI writes (-o): checked before any work, written atomically,
and every OS refusal (a missing or read-only directory, /proc, a full
disk) is one line that leaves nothing behind.

An -o FILE is only ever a regular file: a device node (/dev/null,
/dev/full), a FIFO, a socket or a directory is refused, never replaced by
a file (``os.replace`` onto /dev/null as root would turn the host's device
node into a regular file). A symbolic link to a regular file is written
through: the link stays, its target gets the new content. The file gets
the permissions an ``open()`` would give it (0666 less the umask), not
mkstemp's private 0600.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from farm.errors import ArtifactMissingError, UserError

_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return None if stat.S_ISREG(mode) else "not a regular file"


def _target(path: Path) -> Path:
    """The path the bytes go to: a symlink's final target, else ``path``;
    a non-regular existing file is refused here, before anything is written."""
    try:
        info = os.stat(path)  # follows links: a link to /dev/null is /dev/null
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    kind = _kind(info.st_mode)
    if kind:
        raise UserError(f"{path} is {kind}, not a regular file; -o writes regular files only (give a file name)")
    return Path(os.path.realpath(path))


def check_output(path: Path | None) -> None:
    """Refuse an -o FILE that cannot be written, before the command does its work."""
    if path is None:
        return
    _target(path)
    parent = path.resolve().parent
    if not parent.is_dir():
        raise UserError(f"directory {path.parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write to directory {path.parent} (permission denied)")


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def written_by(path: Path, write) -> None:
    """Let ``write(tmp_path)`` produce the file (e.g. pandas' to_parquet),
    then move it onto ``path`` atomically: a temporary file in the target's
    own folder, given the umask's permissions, renamed over the target."""
    target = _target(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=target.resolve().parent, prefix=f".{target.name}.", suffix=".partial")
        os.close(fd)
        write(Path(tmp))
        os.chmod(tmp, _umask_mode())
        _target(path)  # refused if something not a file took the name meanwhile
        os.replace(tmp, target)
    except ArtifactMissingError:
        raise  # the source is missing, not the destination unwritable: the caller says so
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp and Path(tmp).exists():
            Path(tmp).unlink(missing_ok=True)


def write_output(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory."""
    payload = data.encode() if isinstance(data, str) else data
    written_by(path, lambda tmp: Path(tmp).write_bytes(payload))
