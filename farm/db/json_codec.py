"""JSON for the database's JSON columns, non-finite figures included.

A measurement can hold NaN or infinity honestly: a ``Sqrt`` or ``Log``
model on random inputs outputs NaN, and its accuracy figures are NaN too.
Python writes those as the bare tokens ``NaN``/``Infinity``, which SQLite
stores but PostgreSQL's ``json`` type rejects ("Token NaN is invalid"):
the result write failed and the measurement was lost. So a non-finite
float is written as a tagged object ``{"$float": "nan"|"inf"|"-inf"}``
on every database, and read back as the float it was. Documents with
only finite numbers are written exactly as ``json.dumps`` writes them;
rows an older farm wrote with bare tokens still read (Python's parser
accepts them).
"""

from __future__ import annotations

import json
import math
from typing import Any

TAG = "$float"
_NAMES = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _tagged(value: float) -> dict[str, str]:
    return {TAG: "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


def _replace_non_finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return _tagged(value)
    if isinstance(value, dict):
        return {key: _replace_non_finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_replace_non_finite(item) for item in value]
    return value


def dumps(value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:  # a NaN or an infinity somewhere: tag it (rare, so the fast path stays plain)
        return json.dumps(_replace_non_finite(value), allow_nan=False)


def _untag(mapping: dict) -> Any:
    if len(mapping) == 1 and mapping.get(TAG) in _NAMES:
        return _NAMES[mapping[TAG]]
    return mapping


def loads(text: str | bytes) -> Any:
    if isinstance(text, (bytes, bytearray)):
        text = text.decode()
    if TAG not in text:
        return json.loads(text)
    return json.loads(text, object_hook=_untag)
