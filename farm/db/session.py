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
from sqlalchemy.orm import Session

from farm.config import network_timeout_s, settings
from farm.db import json_codec
from farm.errors import UserError
from farm.optional import from_import_error
from farm.redact import mask

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


def _make_engine(url: str, pre_ping: bool = True) -> Engine:
    # NaN and infinity survive a JSON column on every database (farm.db.json_codec).
    codec = {"json_serializer": json_codec.dumps, "json_deserializer": json_codec.loads}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **codec)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=pre_ping, connect_args=_server_timeouts(url), **codec)


def _server_timeouts(url: str) -> dict:
    """Bounded waits on a database server (FARM_NETWORK_TIMEOUT_S): a
    connection attempt, and a connection whose peer went silent (TCP
    keepalives, and unacknowledged writes via tcp_user_timeout)."""
    if not url.startswith("postgresql"):
        return {}
    timeout = network_timeout_s()
    return {"connect_timeout": max(1, round(timeout)), "keepalives": 1, "keepalives_idle": 30,
            "keepalives_interval": 10, "keepalives_count": 3, "tcp_user_timeout": int(timeout * 6000)}


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
    _connectable(url).dispose()  # a bad URL, a missing driver or a down server: one line, before alembic
    config = alembic_config(url)
    command.upgrade(config, "head")
    return ScriptDirectory.from_config(config).get_current_head() or ""


def _revisions(engine: Engine) -> tuple[str | None, str | None]:
    """(the database's schema revision or None if it has none, this code's head)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None, head
        return MigrationContext.configure(connection).get_current_revision(), head


def _needs_upgrade(engine: Engine) -> bool:
    current, head = _revisions(engine)
    return current != head


def _check_schema(engine: Engine, url: str) -> None:
    """A server database is upgraded by 'farm db upgrade' only (several
    hosts share it); until then every command refuses it in one line."""
    current, head = _revisions(engine)
    if current == head:
        return
    where = mask(url)
    if current is None:
        raise UserError(f"the database at {where} has no farm schema yet; run 'farm db upgrade' once")
    raise UserError(f"the database at {where} is at schema revision {current}, this farm needs {head}; "
                    f"run 'farm db upgrade' (a revision this version does not know means a newer farm upgraded it)")


def engine_for(url: str | None = None, pre_ping: bool = True) -> Engine:
    """The process's engine for ``url``. ``pre_ping=False``: a pool of its
    own whose checkouts skip the liveness round trip, for callers that retry
    a transaction on a broken connection themselves (farm.db.retry; a
    worker's claim and result write, twice per job)."""
    url = url or settings().db_url
    with _lock:
        engine = _engines.get(url if pre_ping else f"{url}\0no-pre-ping")
        if engine is None:
            engine = _connectable(url, pre_ping)
            if url.startswith("sqlite"):
                if _needs_upgrade(engine):
                    upgrade(url)
            else:
                _check_schema(engine, url)
            _engines[url if pre_ping else f"{url}\0no-pre-ping"] = engine
    return engine


def _connectable(url: str, pre_ping: bool = True) -> Engine:
    """An engine that has connected once: a bad FARM_DB_URL or a database
    that is down is the user's to fix (one line), not a traceback."""
    from sqlalchemy.exc import ArgumentError, OperationalError

    try:
        engine = _make_engine(url, pre_ping)
    except ImportError as exc:
        missing = from_import_error(exc, mask(f"FARM_DB_URL {url}"))
        if missing is None:
            raise
        raise missing from None
    except (ArgumentError, ValueError) as exc:
        raise UserError(mask(f"FARM_DB_URL {url!r} is not a usable database URL ({exc})")) from None
    except OSError as exc:  # the SQLite file's directory cannot be made (FARM_HOME under a file, no permission)
        raise UserError(mask(f"cannot create the database directory for {url}: {exc.strerror or exc}")) from None
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnreachable(mask(f"cannot connect to the database at {url}: {reason}")) from None
    return engine


class DatabaseUnreachable(UserError):
    """The database did not answer a first connection: one line for a
    command, a transient outage for a worker's retries (farm.db.retry)."""


def dispose_engines() -> None:
    """Drop pooled connections (after fork, or between tests)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def session_scope(url: str | None = None, pre_ping: bool = True) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any exception."""
    session = Session(bind=engine_for(url, pre_ping), expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def statement_scope(url: str | None = None) -> Iterator[Session]:
    """A session for writes that are one statement each, on the pool that
    skips the liveness round trip (the caller retries, farm.db.retry).

    On PostgreSQL every statement commits on its own (autocommit): a job's
    claim or end, one statement with data-modifying CTEs, is one round trip
    instead of three to five (BEGIN, statements, COMMIT), atomic as any
    single statement is. On SQLite it is session_scope's one transaction."""
    engine = engine_for(url, pre_ping=False)
    if engine.dialect.name != "postgresql":
        with session_scope(url, pre_ping=False) as session:
            yield session
        return
    with engine.connect() as connection:
        session = Session(bind=connection.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False)
        try:
            yield session
        finally:
            session.close()
