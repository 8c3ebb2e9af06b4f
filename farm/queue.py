"""The Celery application, configured as Celery's own advice says: JSON
only, late acks, prefetch 1, reject on worker loss, one solo-pool worker per
device. Routing lives here in configuration: a job goes to the queue named
after its device class. Tasks are looked up by name, so the coordinator
never imports device code.
"""

from __future__ import annotations

from celery import Celery

from farm import embedded_broker
from farm.config import ensure_home, settings

RUN_JOB = "engine_farm.run_job"
DEFAULT_VISIBILITY_TIMEOUT = 6 * 3600


def route_by_device_class(name, args, kwargs, options, task=None, **kw):
    """Celery router: run_job messages go to their device class's queue."""
    if name == RUN_JOB and kwargs and kwargs.get("device_class"):
        return {"queue": kwargs["device_class"]}
    return None


def broker_options(url: str) -> dict:
    if url.startswith(f"{embedded_broker.ALIAS}+"):
        return {}
    return {"visibility_timeout": DEFAULT_VISIBILITY_TIMEOUT}


def make_app(broker_url: str | None = None) -> Celery:
    current = settings()
    url = broker_url or current.broker_url
    if url.startswith(f"{embedded_broker.ALIAS}+"):
        ensure_home()
    app = Celery("engine_farm", broker=url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        task_ignore_result=True,  # results live in the job table, not a result backend
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_routes=(route_by_device_class,),
        task_default_queue="farm.default",
        broker_transport_options=broker_options(url),
        broker_connection_retry_on_startup=True,
        worker_send_task_events=True,  # Flower works against the same broker
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
    )
    return app


def enqueue(app: Celery, job_id: str, device_class: str) -> None:
    app.send_task(RUN_JOB, args=[job_id], kwargs={"device_class": device_class})
