"""The one Celery task: thin, idempotent, takes a job id.

The worker's device is fixed at process start (``workers.serve``); the task
only looks the job up and hands it to the executor.
"""

from __future__ import annotations

from farm.queue import RUN_JOB, make_app
from workers import runtime_state

app = make_app()


@app.task(name=RUN_JOB)
def run_job(job_id: str, device_class: str | None = None) -> str:
    from workers.executor import execute
    from workers.registry import beat

    state = runtime_state.current()
    beat(state.device_id, state.worker, current_job=job_id)
    try:
        return execute(job_id, state.worker, state.device, state.device_id)
    finally:
        beat(state.device_id, state.worker, clear_job=True)
