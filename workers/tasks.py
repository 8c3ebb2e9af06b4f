"""The one Celery task: thin, idempotent, takes a job id.

The worker's device is fixed at process start (``workers.serve``); the task
only looks the job up and hands it to the executor.

While the database is down the task never acknowledges a message it could
not act on: the claim is retried (FARM_DB_RETRY_S), then the message is
rejected back to the broker, so workers do not drain the queue into
failures. A worker whose own environment is broken (workers.faults) hands
its job back the same way and stops. A job whose end could not be written stops the worker (its job is
still ``running`` under this worker's name, which only the reconciler may
hand to another worker once this one is gone).
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from celery.exceptions import Reject

from farm.queue import RUN_JOB, make_app
from workers import runtime_state

app = make_app()
log = logging.getLogger(__name__)


@app.task(name=RUN_JOB)
def run_job(job_id: str, queue: str | None = None, phase: str | None = None) -> str:
    from workers import phases
    from workers.claim import ClaimUnreachable, clear_device
    from workers.executor import execute
    from workers.faults import WorkerBroken
    from workers.job_end import ResultUnreachable

    state = runtime_state.current()
    if state.broken:  # a message that reached a worker on its way out goes straight back
        _send_again(job_id)
        return "handed back"
    clock = phases.start(job_id, state.worker)
    status = "error"
    try:
        # execute claims the job and marks our device busy in one commit,
        # and leaves the device idle again when it returns.
        status = execute(job_id, state.worker, state.device, state.device_id, phase)  # a search's next step too
        return status  # 'displaced': another worker holds our device row; the reconciler re-sends the job
    except ClaimUnreachable as exc:
        status = "rejected"
        log.warning("%s; the message goes back to the broker", exc)
        raise Reject(str(exc), requeue=True) from None
    except WorkerBroken as exc:
        status = "handed back"
        state.broken = str(exc)
        # Past Celery's redirection of stderr into its log: one plain line.
        print(f"Error: worker {state.worker} stops taking jobs (job {job_id} handed back): {exc}",
              file=sys.__stderr__, flush=True)
        _send_again(job_id)
        os.kill(os.getpid(), signal.SIGTERM)  # a warm shutdown; workers.serve exits with EX_BROKEN
        return status
    except ResultUnreachable as exc:
        status = "abandoned"
        log.error("%s; stopping this worker so that the reconciler hands job %s to another", exc, job_id)
        os.kill(os.getpid(), signal.SIGTERM)  # a warm shutdown: the launcher starts a new worker
        return status
    except Exception:
        try:
            clear_device(job_id, state.worker, state.device_id)
        except Exception:
            log.warning("could not mark the device idle after job %s", job_id, exc_info=True)
        raise
    finally:
        clock.lap("end")
        clock.write(status)


def _send_again(job_id: str) -> None:
    """The job is ``queued`` again in the table: send its message now (the
    reconciler would, once FARM_STALE_S has passed)."""
    from farm.db import Job, session_scope
    from farm.queue import send_jobs
    from farm.routing import route

    try:
        with session_scope() as session:
            job = session.get(Job, job_id)
            where = route(job) if job is not None and job.status in ("queued", "built") else None
        if where is not None:
            send_jobs([(job_id, where)], app)
    except Exception:
        log.warning("could not send job %s again; the reconciler will", job_id, exc_info=True)


# Registers engine_farm.run_finals (interleaved finals of a search) on this app.
from workers import finals as _finals  # noqa: E402,F401
