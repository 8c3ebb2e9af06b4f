"""Liveness uses the database's clock, so hosts need not agree on the time."""

from __future__ import annotations

import sys
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from farm.db import Device, Job, Model, Sweep, session_scope, upgrade, utcnow
from farm.db.clock import db_now


@pytest.fixture
def postgres_home(farm_home, monkeypatch):
    import psycopg

    from farm.db.session import dispose_engines

    name = f"farm_clock_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    monkeypatch.setenv("FARM_DB_URL", url)
    upgrade(url)
    yield url
    dispose_engines()
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_sqlite_clock_is_this_hosts(farm_home):
    with session_scope() as session:
        assert abs((db_now(session) - utcnow()).total_seconds()) < 2


@pytest.mark.postgres
def test_postgres_clock_is_utc_whatever_the_session_time_zone(postgres_home):
    with session_scope() as session:
        session.execute(text("SET TIME ZONE 'America/Los_Angeles'"))
        now = db_now(session)
    assert now.tzinfo is None and abs((now - utcnow()).total_seconds()) < 5


@pytest.mark.postgres
def test_a_worker_whose_clock_lags_an_hour_stays_alive(postgres_home):
    from farm import reconcile
    from workers.registry import beat

    with session_scope() as session:
        model = Model(sha256="cd" * 32, name="m.onnx", path="/m.onnx", size_bytes=1, inputs=[])
        session.add(model)
        session.flush()
        session.add(Sweep(id="s1", name="s", model_id=model.id, spec={}))
        device = Device(uuid="GPU-late", kind="gpu", name="GPU", device_class="gpu.x", host="late", worker="w1")
        session.add(device)
        session.flush()
        session.add(Job(id="j1", sweep_id="s1", seq=0, key="k1", backend="torch", backend_version="2.11", precision="fp16", batch_size=1,
                        profile="default", device_class="gpu.x", config={}, status="running", attempts=1,
                        worker="w1", device_id=device.id))
        device_id = device.id

    def late():  # the worker host's clock, an hour behind
        return datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=1)

    with pytest.MonkeyPatch.context() as patch:
        for module in list(sys.modules.values()):  # every farm/workers module that reads this host's clock
            if getattr(module, "__name__", "").startswith(("farm", "workers")) and hasattr(module, "utcnow"):
                patch.setattr(module, "utcnow", late)
        assert beat(device_id, "w1", current_job="j1")
    # The reconciler's host has the right time.
    assert reconcile.find_orphans() == []
