"""``farm backends``: the installed backend plugins and what each can do here."""

from __future__ import annotations

import click

from farm.cli.dialect import format_option
from farm.terminal import say


@click.command("backends")
@format_option()
def backends_cmd(fmt) -> None:
    """List installed backends: precisions, where they measure, whether this
    machine has their libraries (and which version), what the project has
    verified of them, and every plugin that fails to load, with its error."""
    from farm.backends import backend_config, backend_errors, backend_names, distribution_version, missing_requirements

    errors = backend_errors()
    rows = []
    for name in backend_names():
        if name in errors:
            rows.append({"name": name, "error": errors[name]})
            continue
        config = backend_config(name)
        caps = config.capabilities()  # what submit, routing and workers use
        missing = missing_requirements(name)
        rows.append({"name": name, "precisions": list(caps.precisions), "device_kinds": list(caps.device_kinds),
                     "build_anywhere": bool(caps.build_anywhere), "missing": missing,
                     "version": distribution_version(config.distribution) if config.distribution else None,
                     "verified": config.verified or None, "error": None})
    if fmt == "json":
        from farm.cli.output import to_json

        click.echo(to_json(rows))
        return
    for row in rows:
        if row["error"]:
            say(f"{row['name']}: failed to load: {row['error']}")
            continue
        version, missing = row["version"], row["missing"]
        here = ("ready" + (f" ({version})" if version else "")) if not missing else "missing " + ", ".join(missing)
        builds = ", builds anywhere" if row["build_anywhere"] else ""
        say(f"{row['name']}: precisions {', '.join(row['precisions'])}; jobs on {', '.join(row['device_kinds'])}"
            f"{builds}; here: {here}")
        if row["verified"]:
            say(f"  note: {row['verified']}")
