"""``farm store``: the artifact store at FARM_STORE_URL."""

from __future__ import annotations

import click

from farm.config import settings
from farm.terminal import say


def _s3_store():
    from farm.store.s3 import configured_store

    return configured_store()


@click.group("store")
def store_group() -> None:
    """The artifact store (FARM_STORE_URL)."""


@store_group.command("create-bucket")
def create_bucket_cmd():
    """Create FARM_STORE_URL's S3 bucket unless it exists (a deployment's
    one-shot init step; running it again changes nothing)."""
    store = _s3_store()
    created = store.create_bucket()
    say(f"bucket {store.bucket} {'created' if created else 'already exists'} on {store.where}")


@store_group.command("check")
def check_cmd():
    """Say whether the store at FARM_STORE_URL can be used from this host."""
    from farm.store import open_store

    open_store().check()
    say(f"store {settings().store_url} is usable")
