"""Text the farm prints for a person to read carries no terminal control:
every control character of a value the farm did not write itself (a sweep
name, a model path, a worker's error) is shown escaped (``\\x1b``), so a
name holding an OSC 52 sequence cannot write the reader's clipboard, set
the window title, move the cursor or hide a line.

``printable`` escapes one value (table cells: farm.reports.cells.fmt);
``say`` prints a message line by line, each line escaped (the farm's own
messages hold no control characters, so nothing of theirs is lost). Tables
keep their own colour: their cells are escaped before rich styles them.
"""

from __future__ import annotations

import re

# C0 controls but newline, DEL, C1 controls, and the Unicode bidi
# overrides/isolates that reorder what a reader sees ("Trojan Source").
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, keep_newlines: bool = False) -> str:
    """``text`` with every control character escaped; a newline too unless
    ``keep_newlines`` (a cell or a name is one line)."""
    escaped = _CONTROL.sub(_escape, text)
    return escaped if keep_newlines else escaped.replace("\n", "\\n")


def say(message: object, err: bool = False) -> None:
    """click.echo of a message whose lines are escaped (see module doc)."""
    import click

    click.echo(printable(str(message), keep_newlines=True), err=err)
