"""Settings from the environment, resolved once per call (never cached)
so tests and sub-processes can point at other homes and servers."""

from __future__ import annotations

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
    home = Path(os.environ.get("FARM_HOME", ".farm")).resolve()
    db_url = os.environ.get("FARM_DB_URL") or f"sqlite:///{home / 'farm.db'}"
    broker = os.environ.get("FARM_BROKER_URL") or f"farmsql+sqlite:///{home / 'broker.db'}"
    store = os.environ.get("FARM_STORE_URL") or str(home / "artifacts")
    return Settings(home=home, db_url=db_url, broker_url=broker, store_url=store)


def ensure_home() -> Path:
    home = settings().home
    home.mkdir(parents=True, exist_ok=True)
    return home
