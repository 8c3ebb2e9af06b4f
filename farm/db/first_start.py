"""One schema change at a time, across processes.

Any number of ``farm`` commands and workers may start at once on a fresh
FARM_HOME (or run ``farm db upgrade`` at once on a fresh PostgreSQL
database). Each sees a database without the newest schema and would create
the same tables; the second one failed with "table ... already exists". The
migration therefore runs under a lock every process shares, and re-reads
the schema revision once it holds it (Alembic does: it reads the current
revision inside ``run_migrations``), so the processes that waited find the
work done and change nothing:

- SQLite: an exclusive ``flock`` on a file beside the database file (all
  processes of one embedded farm share its filesystem);
- PostgreSQL: a session-level advisory lock taken on the migration's own
  connection (released when that connection closes, also when it dies).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# pg_advisory_lock's key: any 64-bit number no other client of the database
# uses; this one spells "farmmigr".
_PG_LOCK_KEY = 0x6661726D6D696772


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def sqlite_lock_path(url: str) -> Path | None:
    """The lock file beside a SQLite database file; None for in-memory ones."""
    path = url.split("///", 1)[-1] if "///" in url else ""
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path + ".migrate-lock")


@contextmanager
def migration_lock(connection) -> Iterator[None]:
    """Hold the cross-process schema lock for the database ``connection``
    belongs to, for the duration of the block."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        from sqlalchemy import text

        # Outside the migration's transaction: a session lock, held until unlocked or disconnected.
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})
            connection.commit()
        return
    path = sqlite_lock_path(str(connection.engine.url)) if dialect == "sqlite" else None
    if path is None:
        yield
        return
    with file_lock(path):
        yield
