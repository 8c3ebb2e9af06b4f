"""Device side of Engine Farm: device discovery, backends, timing, and the
Celery task that runs one job. May import ``farm``'s schema; ``farm`` never
imports this package."""
