"""The one Celery task: thin, idempotent, takes a job id.

The worker's device is fixed at process start (``workers.serve``); the task
only looks the job up and hands it to the executor.
"""

from __future__ import annotations

from farm.queue import RUN_JOB, make_app
from workers import runtime_state

app = make_app()


@app.task(name=RUN_JOB)
def run_job(job_id: str, queue: str | None = None) -> str:
    from workers.executor import execute
    from workers.registry import beat

    state = runtime_state.current()
    # current_job is set before the claim, so whoever sees the job running
    # also sees which worker holds it (farm.reconcile relies on this order).
    if not beat(state.device_id, state.worker, current_job=job_id):
        return "displaced"  # another worker holds our device row; the reconciler re-sends the job
    try:
        return execute(job_id, state.worker, state.device, state.device_id)
    finally:
        beat(state.device_id, state.worker, clear_job=True)


# Registers engine_farm.run_finals (interleaved finals of a search) on this app.
from workers import finals as _finals  # noqa: E402,F401
