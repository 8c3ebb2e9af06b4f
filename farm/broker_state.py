"""Which jobs still have a message waiting in the broker.

The reconciler uses this to re-send only messages the broker lost (Redis
restarted without persistence, a worker killed while holding a message the
embedded broker will never give back). Only *ready* messages count: a
delivered but unacknowledged message belongs to a worker, and whether that
worker is alive is the heartbeat's business, not the broker's.

Returns None for transports it cannot look into (e.g. AMQP); the caller
then leaves queued jobs alone.
"""

from __future__ import annotations

import base64
import json
import logging

from farm.queue import is_redis, job_of_task, make_app, scheme

log = logging.getLogger(__name__)


def _job_of_payload(raw) -> str | None:
    try:
        message = json.loads(raw)
    except (TypeError, ValueError):
        return None
    headers = message.get("headers") or {}
    job = job_of_task(headers.get("id"))
    if job is None and message.get("body"):  # messages sent before task ids named jobs
        try:
            body = json.loads(base64.b64decode(message["body"]))
            job = body[0][0] if body and body[0] else None
        except (ValueError, TypeError, IndexError, KeyError):
            return None
    return job


def _redis_ready(channel, queues: set[str]) -> set[str]:
    client, found = channel.client, set()
    for queue in queues:
        for priority in channel.priority_steps:
            for raw in client.lrange(channel._q_for_pri(queue, priority), 0, -1):
                if job := _job_of_payload(raw):
                    found.add(job)
    return found


def _sqlalchemy_ready(channel, queues: set[str]) -> set[str]:
    found = set()
    session = channel.session
    queue_cls, message_cls = channel.queue_cls, channel.message_cls
    rows = (session.query(message_cls.payload).join(queue_cls, message_cls.queue_id == queue_cls.id)
            .filter(queue_cls.name.in_(list(queues)), message_cls.visible.is_(True)))
    for (payload,) in rows:
        if job := _job_of_payload(payload):
            found.add(job)
    session.commit()
    return found


def ready_jobs(queues: set[str], broker_url: str | None = None) -> set[str] | None:
    """Job ids with a ready message in any of ``queues``; None if unknown."""
    app = make_app(broker_url)
    url = app.conf.broker_url
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        if is_redis(url):
            return _redis_ready(channel, queues)
        if scheme(url) in ("farmsql", "sqlalchemy", "sqla"):
            return _sqlalchemy_ready(channel, queues)
    return None
