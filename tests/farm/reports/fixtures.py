"""Fixtures shared by the report and dashboard tests."""

import pytest

from farm.db.session import dispose_engines


@pytest.fixture
def farm_home(tmp_path, monkeypatch):
    """An empty farm (SQLite + local store) under tmp_path."""
    monkeypatch.setenv("FARM_HOME", str(tmp_path / "farm"))
    for name in ("FARM_DB_URL", "FARM_STORE_URL", "FARM_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path / "farm"
    dispose_engines()


@pytest.fixture
def known(farm_home):
    from seeding import seed

    return seed()
