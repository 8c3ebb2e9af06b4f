"""Insert-or-get for rows keyed by content (models by sha256, artifacts by
sha256): two writers adding the same row at once must both succeed.

``INSERT ... ON CONFLICT DO NOTHING``: on PostgreSQL the second insert waits
for the first transaction and then does nothing; SQLite serialises writers.
Either way the row is there afterwards, exactly once.
"""

from __future__ import annotations


def insert_ignoring_duplicates(session, entity, row: dict, key: str):
    """The INSERT statement for ``row`` that leaves an existing ``key`` alone."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(entity).values(**row).on_conflict_do_nothing(index_elements=[key])
