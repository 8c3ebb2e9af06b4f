"""Engines and sessions. The schema is managed by Alembic; the embedded
SQLite database is upgraded automatically on first use so the quickstart
needs no setup step, other databases with ``farm db upgrade``."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from farm.config import settings
from farm.errors import UserError

_engines: dict[str, Engine] = {}
_lock = threading.Lock()
MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the coordinator read while a worker writes; busy_timeout makes
    # concurrent writers wait instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str | None = None) -> str:
    """Bring the database at ``url`` to the newest schema; returns the revision."""
    from alembic import command
    from alembic.script import ScriptDirectory

    url = url or settings().db_url
    config = alembic_config(url)
    command.upgrade(config, "head")
    return ScriptDirectory.from_config(config).get_current_head() or ""


def _needs_upgrade(engine: Engine) -> bool:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return True
        return MigrationContext.configure(connection).get_current_revision() != head


def engine_for(url: str | None = None) -> Engine:
    url = url or settings().db_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _connectable(url)
            if url.startswith("sqlite") and _needs_upgrade(engine):
                upgrade(url)
            _engines[url] = engine
    return engine


def _connectable(url: str) -> Engine:
    """An engine that has connected once: a bad FARM_DB_URL or a database
    that is down is the user's to fix (one line), not a traceback."""
    from sqlalchemy.exc import ArgumentError, OperationalError

    try:
        engine = _make_engine(url)
    except (ArgumentError, ImportError, ValueError) as exc:
        raise UserError(f"FARM_DB_URL {_safe(url)!r} is not a usable database URL ({exc})") from None
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise UserError(f"cannot connect to the database at {_safe(url)}: {reason}") from None
    return engine


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def dispose_engines() -> None:
    """Drop pooled connections (after fork, or between tests)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any exception."""
    session = sessionmaker(bind=engine_for(url), expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
