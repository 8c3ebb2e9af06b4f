"""One clock for liveness: the database server's.

Heartbeats are written by workers on many hosts and judged by reconcilers
on others. Reading "now" from the database for both sides means a host
whose clock is off (no NTP, a drifting VM) is neither declared dead while
it works nor kept alive after it died. SQLite is embedded, so its clock is
this host's.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, text

from farm.db.models import utcnow


def db_now(session) -> datetime:
    """The database's current UTC time as a naive datetime (how the tables store times)."""
    if session.get_bind().dialect.name == "postgresql":
        return session.execute(text("SELECT timezone('UTC', clock_timestamp())")).scalar_one()
    return utcnow()


def db_now_value(session):
    """``db_now`` as a value for an UPDATE: the server's clock read inside
    the statement itself on PostgreSQL (no extra round trip)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.timezone("UTC", func.clock_timestamp())
    return utcnow()
