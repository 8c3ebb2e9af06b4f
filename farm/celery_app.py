"""A module-level Celery app for Celery's own tools, configured from the
environment like the farm's: ``celery -A farm.celery_app flower``,
``celery -A farm.celery_app inspect active``. The farm itself never imports
this module (it builds apps with farm.queue.make_app)."""

from farm.queue import make_app

app = make_app()
