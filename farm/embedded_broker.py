"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file under
FARM_HOME, so a laptop needs no broker server.

Registered as the ``farmsql`` transport: it polls every 0.2 s (the stock
transport waits a whole second between polls) and waits for SQLite locks
instead of failing while another process writes.
"""

from __future__ import annotations

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import sqlalchemy as sqla

ALIAS = "farmsql"
_ENGINE_ONLY_OPTIONS = ("polling_interval",)


class Channel(sqla.Channel):
    def _engine_from_config(self):
        from sqlalchemy import create_engine

        url = self.connection.client.hostname
        return create_engine(url, connect_args={"timeout": 30})


class Transport(sqla.Transport):
    Channel = Channel
    polling_interval = 0.2


def register() -> None:
    TRANSPORT_ALIASES.setdefault(ALIAS, "farm.embedded_broker:Transport")


register()
