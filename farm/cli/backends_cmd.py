"""``farm backends``: the installed backend plugins and what each can do here."""

from __future__ import annotations

import click

from farm.terminal import say


@click.command("backends")
def backends_cmd() -> None:
    """List installed backends: precisions, where they measure, whether this
    machine has their libraries (and which version), what the project has
    verified of them, and every plugin that fails to load, with its error."""
    from farm.backends import backend_config, backend_errors, backend_names, distribution_version, missing_requirements

    errors = backend_errors()
    for name in backend_names():
        if name in errors:
            say(f"{name}: failed to load: {errors[name]}")
            continue
        config = backend_config(name)
        caps = config.capabilities()  # what submit, routing and workers use
        missing = missing_requirements(name)
        version = distribution_version(config.distribution) if config.distribution else None
        here = ("ready" + (f" ({version})" if version else "")) if not missing else "missing " + ", ".join(missing)
        builds = ", builds anywhere" if caps.build_anywhere else ""
        say(f"{name}: precisions {', '.join(caps.precisions)}; jobs on {', '.join(caps.device_kinds)}"
            f"{builds}; here: {here}")
        if config.verified:
            say(f"  note: {config.verified}")
