"""Writing report frames as csv, json or parquet (docs/fields.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from farm.errors import MissingDependencyError, UserError
from farm.reports.rows import INTEGER_FIELDS, frame_rows

EXPORT_FORMATS = ("csv", "json", "parquet")


def to_text(frame: pd.DataFrame, fields, fmt: str) -> str:
    """csv or json text with exactly ``fields`` as columns, in order."""
    if fmt == "json":
        return json.dumps(frame_rows(frame, fields), indent=2, default=str, allow_nan=False)
    out = _integers(frame[list(fields)].copy())
    for column in out.columns:  # lists (flags, tied_with) as ';'-joined text
        if out[column].map(lambda v: isinstance(v, list)).any():
            out[column] = out[column].map(lambda v: ";".join(map(str, v)) if isinstance(v, list) else v)
        if not pd.api.types.is_numeric_dtype(out[column]):  # text; numeric columns keep their numbers
            out[column] = out[column].map(neutralise)
    return out.to_csv(index=False)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """A text cell a spreadsheet would run as a formula (=HYPERLINK(...),
    +cmd, -2+3, @SUM) gets a leading apostrophe (OWASP's CSV-injection
    advice); numbers are left as numbers, so -1.5 in a numeric column stays
    -1.5. Only text cells change: every one the farm writes itself starts
    with a letter or a digit."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_parquet(frame: pd.DataFrame, fields, path: Path | None) -> None:
    if path is None:
        raise UserError("parquet is binary: give -o FILE")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise MissingDependencyError("parquet export needs pyarrow: pip install 'engine-farm[parquet]'") from None
    from farm.output_files import written_by

    out = _integers(pd.DataFrame(frame_rows(frame, fields), columns=list(fields)))
    written_by(path, lambda tmp: out.to_parquet(tmp, index=False))


def _integers(frame: pd.DataFrame) -> pd.DataFrame:
    """Integer fields as nullable Int64: 17, not 17.0 (missing stays empty)."""
    for column in INTEGER_FIELDS & set(frame.columns):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").round().astype("Int64")
    return frame
