"""Settings from the environment, read on every call (resolved once per
distinct environment and working directory), so tests and sub-processes
can point at other homes and servers."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    db_url: str
    broker_url: str
    store_url: str

    @property
    def is_embedded_broker(self) -> bool:
        return self.broker_url.startswith("farmsql+")


def settings() -> Settings:
    env = os.environ
    return _settings(env.get("FARM_HOME") or ".farm", env.get("FARM_DB_URL"), env.get("FARM_BROKER_URL"),
                     env.get("FARM_STORE_URL"), os.getcwd())


@functools.lru_cache(maxsize=32)
def _settings(home_name: str, db_url: str | None, broker: str | None, store: str | None, cwd: str) -> Settings:
    # Keyed by the environment and the directory a relative FARM_HOME resolves
    # against: a worker asks several times per job, and resolving the path
    # and checking it each time was a measurable part of a short job.
    home = Path(cwd, home_name).resolve()
    if home.exists() and not home.is_dir():
        from farm.errors import UserError

        raise UserError(f"FARM_HOME {home} is not a directory (it names a file)")
    db_url = db_url or f"sqlite:///{home / 'farm.db'}"
    broker = broker or f"farmsql+sqlite:///{home / 'broker.db'}"
    store = store or str(home / "artifacts")
    return Settings(home=home, db_url=db_url, broker_url=broker, store_url=store)


def ensure_home() -> Path:
    home = settings().home
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from farm.errors import UserError

        raise UserError(f"cannot create FARM_HOME {home}: {exc.strerror or exc}") from None
    return home


# Liveness and retry knobs, read from the environment on every call so tests
# can run the whole reconcile cycle in seconds. Production defaults: a
# worker beats every 10 s and is presumed dead after 45 s of silence.
def _number(name: str, default: float, zero_ok: bool = False) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    from farm.errors import UserError

    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{name}={raw!r} is not a number") from None
    usable = value >= 0 if zero_ok else value > 0
    if not usable or value == float("inf"):  # nan compares false
        kind = "a finite number, 0 or more" if zero_ok else "a positive finite number"
        raise UserError(f"{name} must be {kind}, got {raw}")
    return value


def heartbeat_s() -> float:
    """FARM_HEARTBEAT_S: seconds between a worker's heartbeats."""
    return _number("FARM_HEARTBEAT_S", 10.0)


def stale_s() -> float:
    """FARM_STALE_S: a worker silent this long is presumed dead."""
    return _number("FARM_STALE_S", 45.0)


def reconcile_s() -> float:
    """FARM_RECONCILE_S: seconds between a launcher's reconcile passes."""
    return _number("FARM_RECONCILE_S", 15.0)


def max_attempts() -> int:
    """FARM_MAX_ATTEMPTS: a job whose worker died this many times is quarantined."""
    value = _number("FARM_MAX_ATTEMPTS", 3.0)
    if not value.is_integer():
        from farm.errors import UserError

        raise UserError(f"FARM_MAX_ATTEMPTS must be a whole number of attempts, got {os.environ['FARM_MAX_ATTEMPTS']}")
    return int(value)


def restart_delay_s() -> float:
    """FARM_RESTART_DELAY_S: pause before a launcher restarts a dead worker (0: at once)."""
    return _number("FARM_RESTART_DELAY_S", 1.0, zero_ok=True)


def shutdown_grace_s() -> float:
    """FARM_SHUTDOWN_GRACE_S: how long a warm shutdown lets current jobs finish."""
    return _number("FARM_SHUTDOWN_GRACE_S", 540.0, zero_ok=True)


def store_wait_s() -> float:
    """FARM_STORE_WAIT_S: how long a worker waits for an unreachable S3 store (0: not at all)."""
    return _number("FARM_STORE_WAIT_S", 900.0, zero_ok=True)


def visibility_timeout_s() -> float:
    """FARM_VISIBILITY_TIMEOUT_S: Redis redelivers an unacknowledged message after this."""
    return _number("FARM_VISIBILITY_TIMEOUT_S", 6 * 3600.0)


def default_timeouts() -> dict[str, float]:
    """Per-job hard limits when a spec gives no ``timeouts``."""
    return {"build_s": _number("FARM_BUILD_TIMEOUT_S", 3 * 3600.0),
            "measure_s": _number("FARM_MEASURE_TIMEOUT_S", 3600.0)}


def retry_window_s() -> float:
    """FARM_DB_RETRY_S: how long a worker retries a transaction while the database is down."""
    return _number("FARM_DB_RETRY_S", 300.0)


def network_timeout_s() -> float:
    """FARM_NETWORK_TIMEOUT_S: the longest wait for one connection or one
    answer from the broker, the database or the store (an endpoint that
    accepts and never answers must not hang a command or a worker)."""
    return _number("FARM_NETWORK_TIMEOUT_S", 10.0)


def check_worker_settings() -> None:
    """Read every worker setting once, at start: a bad value is one line
    before any worker process runs, not a restart loop, a reconcile thread
    that silently died, or a launcher that crashed leaving its worker."""
    from farm.errors import UserError

    heartbeat, stale = heartbeat_s(), stale_s()
    for read in (reconcile_s, max_attempts, visibility_timeout_s, default_timeouts, restart_delay_s,
                 shutdown_grace_s, store_wait_s, retry_window_s, network_timeout_s):
        read()
    if heartbeat >= stale:
        raise UserError(f"FARM_HEARTBEAT_S ({heartbeat:g}) must be below FARM_STALE_S ({stale:g}): a live worker "
                        f"would be presumed dead between two of its heartbeats")
