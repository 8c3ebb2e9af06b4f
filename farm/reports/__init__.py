"""Reports over the results database (pandas).

``job_rows`` is the stable row format behind ``farm report --format json``
and ``farm best``; see docs/fields.md for the field list.
"""

from farm.reports.rows import REPORT_FIELDS, job_rows, jobs_frame, load_frame
from farm.reports.best import BEST_FIELDS, BEST_OBJECTIVES, Constraints, best_per_device
from farm.reports.candidates import find_best

__all__ = ["BEST_FIELDS", "BEST_OBJECTIVES", "Constraints", "REPORT_FIELDS", "best_per_device", "find_best",
           "job_rows", "jobs_frame", "load_frame"]
