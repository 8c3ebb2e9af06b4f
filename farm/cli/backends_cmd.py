"""``farm backends``: the installed backend plugins and what each can do here."""

from __future__ import annotations

import click


@click.command("backends")
def backends_cmd() -> None:
    """List installed backends: precisions, where they measure, whether this
    machine has their libraries, and what the project has verified of them."""
    from farm.backends import backend_config, backend_names, missing_requirements

    for name in backend_names():
        config = backend_config(name)
        missing = missing_requirements(name)
        here = "ready" if not missing else "missing " + ", ".join(missing)
        builds = ", builds anywhere" if config.build_anywhere else ""
        click.echo(f"{name}: precisions {', '.join(config.precisions)}; jobs on {', '.join(config.device_kinds)}"
                   f"{builds}; here: {here}")
        if config.verified:
            click.echo(f"  note: {config.verified}")
