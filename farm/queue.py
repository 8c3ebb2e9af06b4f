"""The Celery application, configured as Celery's own advice says: JSON
only, late acks, prefetch 1, reject on worker loss, one solo-pool worker per
device. Routing lives here in configuration: a job goes to the queue named
after its device class. Tasks are looked up by name, so the coordinator
never imports device code.

Security: messages are JSON only (a pickle message is refused by the worker
before it is deserialized). ``rediss://`` brokers always verify the server
certificate (FARM_BROKER_CA), optionally present a client certificate
(FARM_BROKER_CERT / FARM_BROKER_KEY); Redis AUTH comes from the URL or
FARM_BROKER_USER / FARM_BROKER_PASSWORD.
"""

from __future__ import annotations

import os
import ssl
import uuid
from urllib.parse import parse_qs, urlsplit

from celery import Celery

from farm import embedded_broker
from farm.config import default_timeouts, ensure_home, network_timeout_s, settings, visibility_timeout_s
from farm.errors import UserError
from farm.redact import mask
from farm.routing import Route

RUN_JOB = "engine_farm.run_job"
_REDIS_SCHEMES = ("redis", "rediss", "sentinel")
_NO_CHECK = {"none", "cert_none", "optional", "cert_optional"}


def route_by_queue(name, args, kwargs, options, task=None, **kw):
    """Celery router: run_job messages go to the queue their job names."""
    if name == RUN_JOB and kwargs and kwargs.get("queue"):
        return {"queue": kwargs["queue"]}
    return None


def scheme(url: str) -> str:
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def is_redis(url: str) -> bool:
    return scheme(url) in _REDIS_SCHEMES


def broker_options(url: str) -> dict:
    if not is_redis(url):
        return {}
    # Bounded waits: a broker that accepts and never answers (rediss:// at a
    # plain Redis) hung submit for over 10 minutes. The worker's BRPOP waits
    # 1 s per poll, well inside these.
    timeout = network_timeout_s()
    return {"visibility_timeout": visibility_timeout_s(), "socket_timeout": timeout,
            "socket_connect_timeout": timeout, "socket_keepalive": True}


def ssl_options(url: str) -> dict | None:
    """TLS settings for a rediss:// broker; certificate checks cannot be
    turned off (a farm broker carries job ids to every GPU host)."""
    if scheme(url) != "rediss":
        return None
    query = {k.lower(): v[-1].lower() for k, v in parse_qs(urlsplit(url).query).items()}
    if query.get("ssl_cert_reqs") in _NO_CHECK:
        raise UserError("FARM_BROKER_URL turns certificate checks off (ssl_cert_reqs); "
                        "the farm requires ssl_cert_reqs=required with FARM_BROKER_CA")
    options: dict[str, object] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    for key, env in (("ssl_ca_certs", "FARM_BROKER_CA"), ("ssl_certfile", "FARM_BROKER_CERT"),
                     ("ssl_keyfile", "FARM_BROKER_KEY")):
        if os.environ.get(env):
            options[key] = os.environ[env]
    return options


def check_time_limits(timeouts: dict | None = None, url: str | None = None) -> None:
    """A job's hard limits must end before Redis would redeliver its
    message to another worker (the message stays unacked while it runs)."""
    url = url or settings().broker_url
    if not is_redis(url):
        return
    limits = {**default_timeouts(), **(timeouts or {})}
    total, visibility = limits["build_s"] + limits["measure_s"], visibility_timeout_s()
    if total >= visibility:
        raise UserError(
            f"job time limits (build {limits['build_s']:g} s + measure {limits['measure_s']:g} s = {total:g} s) "
            f"must be below the Redis visibility timeout ({visibility:g} s, FARM_VISIBILITY_TIMEOUT_S)")


def check_broker(app: Celery | None = None) -> None:
    """Fail with one line, before anything is written, when the broker is down."""
    app = app or make_app()
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=5)
    except Exception as exc:  # kombu wraps each transport's own errors differently
        raise UserError(mask(f"cannot reach the broker at {app.conf.broker_url}: {exc}")) from None


def check_broker_url(url: str | None = None) -> str:
    """A broker URL that Celery could not even parse (a port that is not a
    number, an unclosed IPv6 '['): one line, before a worker crash-loops."""
    url = url or settings().broker_url
    try:
        urlsplit(url).port
    except ValueError as exc:
        raise UserError(mask(f"FARM_BROKER_URL {url!r} is not a usable broker URL ({exc})")) from None
    return url


def make_app(broker_url: str | None = None) -> Celery:
    current = settings()
    url = check_broker_url(broker_url or current.broker_url)
    if url.startswith(f"{embedded_broker.ALIAS}+"):
        ensure_home()
    app = Celery("engine_farm", broker=url)
    transport = broker_options(url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        task_ignore_result=True,  # results live in the job table, not a result backend
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_routes=(route_by_queue,),
        task_default_queue="farm.default",
        # Celery reads the Redis visibility timeout in three places; set all.
        broker_transport_options=transport,
        result_backend_transport_options=dict(transport),
        visibility_timeout=transport.get("visibility_timeout"),
        broker_use_ssl=ssl_options(url),
        broker_user=os.environ.get("FARM_BROKER_USER") or None,
        broker_password=os.environ.get("FARM_BROKER_PASSWORD") or None,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=network_timeout_s(),
        # No task events by default (three Redis publishes per job, ~0.3 ms of a short job's overhead):
        # Flower (farm flower) turns them on in the workers while it watches (its --enable_events, on by default).
        worker_send_task_events=False,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
    )
    return app


def task_id(job_id: str) -> str:
    """Message ids start with the job id, so the reconciler can tell which
    jobs still have a message in the broker."""
    return f"{job_id}.{uuid.uuid4().hex[:12]}"


def job_of_task(task: str | None) -> str | None:
    return task.split(".", 1)[0] if task and "." in task else None


def send_jobs(jobs: list[tuple[str, Route]], app: Celery | None = None) -> int:
    """Send one message per (job id, route) over one connection; the phase
    the route decided travels in the message (farm/routing.py)."""
    if not jobs:
        return 0
    app = app or make_app()
    with app.connection_for_write() as connection:
        for job_id, where in jobs:
            app.send_task(RUN_JOB, args=[job_id], kwargs={"queue": where.queue, "phase": where.phase},
                          task_id=task_id(job_id), connection=connection)
    return len(jobs)

