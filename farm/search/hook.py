"""The completion hook a worker calls after ending a job (or finals) of a
search: one indexed lookup; the search's orchestrator (farm/search/driver.py)
is imported only when a step is due. Workers import this module, never the
orchestrator itself (tests/contracts/import_layers.py).

A search submitted with ``farm sweep submit`` runs to its end with workers
alone (``farm sweep drive`` is only needed to watch it, or after an outage),
so the step itself still runs in the worker process that ended the job.
"""

from __future__ import annotations

from sqlalchemy import select

from farm.db import Finals, Job, Search, session_scope


def advance_after(job_id: str | None = None, finals_id: str | None = None) -> str | None:
    """Take the next step of the unfinished search this job (or finals)
    belongs to; returns the sweep advanced, if any."""
    with session_scope() as session:
        owner = (select(Search.sweep_id).join(Job, Job.sweep_id == Search.sweep_id).where(Job.id == job_id)
                 if job_id else
                 select(Search.sweep_id).join(Finals, Finals.sweep_id == Search.sweep_id).where(Finals.id == finals_id))
        sweep_id = session.scalar(owner.where(Search.state != "finished"))
    if sweep_id is not None:
        from farm.search.driver import advance

        advance(sweep_id)
    return sweep_id
