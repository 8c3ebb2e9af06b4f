"""Riding out a database outage: which errors mean "the database is not
there right now", and retrying a whole transaction until it is back.

A worker that has measured a job must not lose the result, nor leave the
job ``running`` for ever, because PostgreSQL restarted at the wrong
moment; a worker holding a message must not ack it because the claim could
not reach the job table. Both retry the transaction (each attempt is a
fresh session: a failed one rolled back entirely) with backoff until
FARM_DB_RETRY_S has passed, then raise ``DatabaseUnavailable``.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

from sqlalchemy import exc as sa_exc

from farm.config import retry_window_s  # a setting, read with the others (farm/config.py)

log = logging.getLogger(__name__)
T = TypeVar("T")
_SQLITE_TRANSIENT = ("locked", "busy", "disk i/o")
_MAX_DELAY_S = 2.0


class DatabaseUnavailable(Exception):
    """The database stayed unreachable for the whole retry window."""


def is_transient(error: BaseException) -> bool:
    """A lost or refused connection (server down, restarting, network), or
    SQLite's writer lock; not a bad statement or a constraint."""
    from farm.db.session import DatabaseUnreachable

    if isinstance(error, DatabaseUnreachable):  # no connection yet in this process (its engine is new)
        return True
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if not isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return False
    orig = getattr(error, "orig", None)
    if orig is not None and type(orig).__module__.startswith("sqlite3"):
        # "no such table" is an OperationalError too, and no wait cures it.
        return any(word in str(orig).lower() for word in _SQLITE_TRANSIENT)
    return True


def retrying(transaction: Callable[[], T], what: str, window_s: float | None = None,
             sleep: Callable[[float], None] = time.sleep, stop: Callable[[], bool] | None = None) -> T:
    """Run ``transaction()`` (which opens its own session) until it gets
    through; transient errors are retried with backoff for ``window_s``,
    or until ``stop()`` says to give up early (the worker is shutting down)."""
    window_s = retry_window_s() if window_s is None else window_s
    deadline, delay, failures = time.monotonic() + window_s, 0.05, 0
    while True:
        try:
            return transaction()
        except Exception as error:
            if not is_transient(error):
                raise
            failures += 1
            if time.monotonic() + delay > deadline or (stop is not None and stop()):
                raise DatabaseUnavailable(f"{what}: the database was unreachable for {window_s:g} s "
                                          f"({type(error).__name__})") from error
            if failures == 1:
                log.warning("%s: database unreachable, retrying for up to %g s", what, window_s)
            # Each attempt checks a connection out of the pool, whose pre-ping
            # replaces the connections the outage broke.
            sleep(delay)
            delay = min(delay * 2, _MAX_DELAY_S)

