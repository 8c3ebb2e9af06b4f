"""One CLI dialect: the option names, format names and device selectors
every command shares, decided here once.

- ``--format table`` is the human format of every printing command (a table,
  or the lines the command says), ``--format json`` the machine one; some
  commands add csv, parquet or html. ``text`` is the old name of ``table``.
- ``--device SELECTOR`` names devices everywhere (``farm run``, ``farm sweep
  submit``, ``farm worker start``, ``farm best``, ``farm fetch``); one
  grammar: ``all``, ``cpu``, ``gpu``, a device class (``gpu.nvidia-l4``) or
  a device's name or words of it (``H100``); comma-separated or repeated
  where a command takes several, and GPU indices or UUIDs where the devices
  are this host's (``farm worker start``). ``any`` is the old name of
  ``all``; ``--devices`` the old name of ``--device``.
- ``--host`` is the address a server binds (``farm dashboard``, ``farm
  flower``; ``--address`` is flower's old name).
- ``farm compare`` compares two sweeps; the report view against the fp32
  batch-1 baseline is ``--view speedup`` (``compare`` is its old name).

Old spellings keep working and print one deprecation line on stderr.
"""

from __future__ import annotations

import functools

import click

from farm.errors import UserError
from farm.reports.views import VIEW_ALIASES

HUMAN_FORMAT = "table"
FORMAT_ALIASES = {"text": HUMAN_FORMAT}
DEVICE_ALIASES = {"any": "all"}


def deprecated(old: str, new: str) -> None:
    """The one line an old spelling prints (stderr: stdout stays the output)."""
    click.echo(f"farm: {old} is deprecated; use {new}", err=True)


class _ChoiceWithAliases(click.Choice):
    """A click.Choice that also takes old names, saying so once."""

    def __init__(self, choices, aliases: dict[str, str], flag: str):
        super().__init__(choices)
        self.aliases, self.flag = aliases, flag

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value in self.aliases and value not in self.choices:
            deprecated(f"{self.flag} {value}", f"{self.flag} {self.aliases[value]}")
            value = self.aliases[value]
        return super().convert(value, param, ctx)


def format_option(*extra: str, help: str | None = None):
    """``--format table|json[|extra...]`` (default table; ``text`` accepted as table)."""
    choices = [HUMAN_FORMAT, *[c for c in extra if c != "json"], "json"]
    return click.option("--format", "fmt", type=_ChoiceWithAliases(choices, FORMAT_ALIASES, "--format"),
                        default=HUMAN_FORMAT, show_default=True,
                        help=help or "table: for people; json: one JSON document on stdout.")


def view_option(choices: list[str], help: str):
    return click.option("--view", type=_ChoiceWithAliases(choices, VIEW_ALIASES, "--view"), default=choices[0],
                        show_default=True, help=help)


def renamed_option(old: str, new: str, dest: str, *, multiple: bool = False):
    """Accept ``old``, the former name of option ``new`` (stored in ``dest``),
    hidden from --help, with a deprecation line. Apply below the new option."""
    hidden = f"renamed_{dest}"

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            value = kwargs.pop(hidden)
            if value not in (None, ()):
                deprecated(old, new)
                ctx = click.get_current_context()
                source = ctx.get_parameter_source(dest)
                if multiple:
                    kwargs[dest] = tuple(kwargs.get(dest) or ()) + tuple(value)
                elif source is not None and source.name == "COMMANDLINE":
                    raise UserError(f"give {new} or {old} (its old name), not both")
                else:
                    kwargs[dest] = value
            return func(*args, **kwargs)

        return click.option(old, hidden, multiple=multiple, hidden=True)(wrapper)

    return decorate


def device_selectors(values) -> tuple[str, ...]:
    """``--device`` values as selectors: comma-separated lists split, old names mapped."""
    out: list[str] = []
    for value in values or ():
        for part in filter(None, (p.strip() for p in str(value).split(","))):
            if part.lower() in DEVICE_ALIASES:
                deprecated(f"--device {part}", f"--device {DEVICE_ALIASES[part.lower()]}")
                part = DEVICE_ALIASES[part.lower()]
            out.append(part)
    return tuple(out)


def one_device(value: str | None) -> str | None:
    """A ``--device`` that names one selector (best, fetch): ``all`` is no filter."""
    if value is None:
        return None
    selectors = device_selectors([value])
    if len(selectors) > 1:
        raise UserError(f"--device {value!r}: give one device selector here")
    if not selectors or selectors[0].lower() == "all":
        return None
    return selectors[0]
