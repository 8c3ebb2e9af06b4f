"""``farm``: a thin CLI over the library API (farm.service, farm.reports).

User errors print one ``Error: ...`` line and exit 1; anything else is a
bug and keeps its traceback. Both go through farm.redact.mask first: no
password from a URL is ever printed.
"""

from __future__ import annotations

import sys

import click

from farm.cli.commands import cli
from farm.errors import UserError
from farm.terminal import printable
from farm.redact import install_log_masking, mask, masked_traceback

MAX_ERROR_CHARS = 2000  # a message quoting a 10 MB value must still be one readable line


def error_line(message: object) -> str:
    """The one line a user error prints: masked, one line, bounded."""
    text = printable(" ".join(mask(message).split()))
    if len(text) > MAX_ERROR_CHARS:
        text = text[:MAX_ERROR_CHARS - 3] + "..."
    return f"Error: {text}"


def main(argv: list[str] | None = None) -> int:
    install_log_masking()
    try:
        cli.main(args=argv, prog_name="farm", standalone_mode=False)
    except UserError as exc:
        _fail(exc)
    except click.exceptions.Abort:
        _fail("aborted")
    except click.ClickException as exc:
        _fail(exc.format_message())
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # an internal bug: its traceback, with credentials masked
        refused = _database_refusal(exc)
        if refused:
            _fail(refused)
        sys.stderr.write(masked_traceback(exc))
        sys.exit(1)
    return 0


def _database_refusal(exc: Exception) -> str | None:
    """A database role without the privileges the farm needs (SQLSTATE
    42501) is the administrator's to fix, not a bug: one line naming the
    role's missing privilege, on every command."""
    try:
        from sqlalchemy.exc import DBAPIError
    except ImportError:
        return None
    if not isinstance(exc, DBAPIError) or getattr(exc.orig, "sqlstate", None) != "42501":
        return None
    from farm.config import settings

    reason = str(exc.orig).strip().splitlines()[0]
    return (f"the database at {settings().db_url} refused this command: {reason}; grant the farm's role "
            f"SELECT, INSERT, UPDATE and DELETE on the farm's tables (and USAGE on their sequences)")


def _fail(message: object) -> None:
    click.echo(error_line(message), err=True)
    sys.exit(1)


__all__ = ["cli", "main", "error_line"]
