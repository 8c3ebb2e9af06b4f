"""``farm``: a thin CLI over the library API (farm.service, farm.reports).

User errors print one ``Error: ...`` line and exit 1; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import sys

import click

from farm.cli.commands import cli
from farm.errors import UserError


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="farm", standalone_mode=False)
    except UserError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("Error: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    return 0


__all__ = ["cli", "main"]
