"""Reports over the results database (pandas).

``job_rows`` is the stable row format behind ``farm report --format json``
and ``farm best``; see docs/fields.md for the field list.

The names below load on first use (PEP 562): importing a submodule that
needs no pandas (``farm.reports.views`` for the CLI's option parsing) does
not pay for pandas, which is most of a ``farm`` command's start-up.
"""

from importlib import import_module

_WHERE = {"REPORT_FIELDS": "rows", "job_rows": "rows", "jobs_frame": "rows", "load_frame": "rows",
          "BEST_FIELDS": "best", "BEST_OBJECTIVES": "best", "Constraints": "best", "best_per_device": "best",
          "find_best": "candidates"}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'farm.reports' has no attribute {name!r}")
    value = getattr(import_module(f"farm.reports.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
