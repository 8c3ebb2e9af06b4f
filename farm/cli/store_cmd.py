"""``farm store``: the artifact store at FARM_STORE_URL."""

from __future__ import annotations

import click

from farm.cli.dialect import format_option
from farm.cli.output import to_json
from farm.config import settings
from farm.terminal import say


def _s3_store():
    from farm.store.s3 import configured_store

    return configured_store()


@click.group("store")
def store_group() -> None:
    """The artifact store (FARM_STORE_URL)."""


@store_group.command("create-bucket")
@format_option()
def create_bucket_cmd(fmt):
    """Create FARM_STORE_URL's S3 bucket unless it exists (a deployment's
    one-shot init step; running it again changes nothing)."""
    store = _s3_store()
    created = store.create_bucket()
    if fmt == "json":
        click.echo(to_json({"bucket": store.bucket, "where": store.where, "created": bool(created)}))
        return
    say(f"bucket {store.bucket} {'created' if created else 'already exists'} on {store.where}")


@store_group.command("check")
@format_option()
def check_cmd(fmt):
    """Say whether the store at FARM_STORE_URL can be used from this host
    (an unusable store is one Error line and exit 1, in either format)."""
    from farm.redact import mask
    from farm.store import open_store

    open_store().check()
    if fmt == "json":
        click.echo(to_json({"store": mask(settings().store_url), "usable": True}))
        return
    say(f"store {settings().store_url} is usable")
