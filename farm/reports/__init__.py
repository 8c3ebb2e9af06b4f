"""Reports over the results database (pandas).

``job_rows`` is the stable row format behind ``farm report --format json``
and ``farm best``; see docs/fields.md for the field list.
"""

from farm.reports.rows import REPORT_FIELDS, job_rows, jobs_frame
from farm.reports.best import BEST_OBJECTIVES, best_per_device

__all__ = ["BEST_OBJECTIVES", "REPORT_FIELDS", "best_per_device", "job_rows", "jobs_frame"]
