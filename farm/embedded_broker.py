"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file under
FARM_HOME, so a laptop needs no broker server.

Registered as the ``farmsql`` transport: it polls every 0.2 s (the stock
transport waits a whole second between polls) and waits for SQLite locks
instead of failing while another process writes. Its tables are created
under the same cross-process lock as the farm's schema (farm.db.first_start):
commands started at once on a fresh FARM_HOME each tried to create them.
"""

from __future__ import annotations

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import sqlalchemy as sqla

ALIAS = "farmsql"
_ENGINE_ONLY_OPTIONS = ("polling_interval",)


class Channel(sqla.Channel):
    def _engine_from_config(self):
        from sqlalchemy import create_engine

        from farm.db.first_start import file_lock, sqlite_lock_path

        url = self.connection.client.hostname
        engine = create_engine(url, connect_args={"timeout": 30})
        lock = sqlite_lock_path(url)
        if lock is not None:
            with file_lock(lock):  # kombu's own create_all right after is then a no-op
                sqla.metadata.create_all(engine)
        return engine

    def _get_or_create(self, queue):
        # Two processes declaring a new queue at once: the loser of the
        # insert reads the winner's row.
        from sqlalchemy.exc import IntegrityError

        try:
            return super()._get_or_create(queue)
        except IntegrityError:
            self.session.rollback()
            return super()._get_or_create(queue)


class Transport(sqla.Transport):
    Channel = Channel
    polling_interval = 0.2


def register() -> None:
    TRANSPORT_ALIASES.setdefault(ALIAS, "farm.embedded_broker:Transport")


register()
