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
def _number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        from farm.errors import UserError

        raise UserError(f"{name}={raw!r} is not a number") from None
    if not value > 0 or value == float("inf"):  # nan compares false
        from farm.errors import UserError

        raise UserError(f"{name} must be a positive finite number, got {raw}")
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
    return int(_number("FARM_MAX_ATTEMPTS", 3))


def visibility_timeout_s() -> float:
    """FARM_VISIBILITY_TIMEOUT_S: Redis redelivers an unacknowledged message after this."""
    return _number("FARM_VISIBILITY_TIMEOUT_S", 6 * 3600.0)


def default_timeouts() -> dict[str, float]:
    """Per-job hard limits when a spec gives no ``timeouts``."""
    return {"build_s": _number("FARM_BUILD_TIMEOUT_S", 3 * 3600.0),
            "measure_s": _number("FARM_MEASURE_TIMEOUT_S", 3600.0)}
