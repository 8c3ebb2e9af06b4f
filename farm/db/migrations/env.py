from alembic import context
from sqlalchemy import create_engine

from farm.db.first_start import migration_lock
from farm.db.models import Base
from farm.db.session import _server_timeouts

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    # SQLite: wait for other processes' writes as the farm's own engines do (30 s, not 5).
    engine = create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else _server_timeouts(url))
    with engine.connect() as connection, migration_lock(connection):
        # Under the lock Alembic reads the revision afresh: a process that
        # waited for another's migration finds the schema at head.
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
