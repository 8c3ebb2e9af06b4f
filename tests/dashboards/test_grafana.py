"""Every Grafana panel's SQL runs against a real, migrated PostgreSQL schema
with data in it (PostgreSQL at 127.0.0.1:5432, trust auth).

Macros are substituted as documented in dashboards/grafana/README.md:
$__timeFilter(c) -> c BETWEEN '1970-01-01' AND '2100-01-01';
$__timeGroupAlias(c, iv) -> date_trunc('hour', c) AS "time"; $__timeGroup(c, iv) -> date_trunc('hour', c);
$device_class / ${device_class} -> 'gpu.nvidia-h100'.
"""

import json
import re
import uuid
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.postgres

DASHBOARD = Path(__file__).parents[2] / "dashboards" / "grafana" / "engine-farm.json"
ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def substitute(sql: str) -> str:
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", r"\1 BETWEEN '1970-01-01' AND '2100-01-01'", sql)
    sql = re.sub(r"\$__timeGroupAlias\(([^,]+),[^)]*\)", r"""date_trunc('hour', \1) AS "time\"""", sql)
    sql = re.sub(r"\$__timeGroup\(([^,]+),[^)]*\)", r"date_trunc('hour', \1)", sql)
    sql = re.sub(r"\$\{?device_class\}?", "'gpu.nvidia-h100'", sql)
    assert "$" not in sql, f"unsubstituted macro in: {sql}"
    return sql


def _queries():
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [(p["title"], t["rawSql"]) for p in dashboard["panels"] for t in p["targets"]]
    variables = [(v["name"], v["query"]) for v in dashboard["templating"]["list"]]
    return panels + variables


@pytest.fixture
def pg_farm(tmp_path, monkeypatch):
    """A throwaway database, migrated, with the known sweep in it."""
    try:
        admin = psycopg.connect(ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}")
    name = f"farm_grafana_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        from farm.db import upgrade
        from farm.db.session import dispose_engines
        from seeding import seed

        upgrade(url)
        monkeypatch.setenv("FARM_HOME", str(tmp_path / "farm"))
        monkeypatch.setenv("FARM_DB_URL", url)
        seed()
        dispose_engines()
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}") as conn:
            yield conn
    finally:
        from farm.db.session import dispose_engines

        dispose_engines()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_dashboard_has_the_panels():
    titles = [title for title, _ in _queries()]
    assert len(titles) == 7
    for needle in ("Sweep throughput", "Job states", "latency trend per GPU", "Telemetry flags"):
        assert any(needle in t for t in titles)


@pytest.mark.parametrize("title, sql", _queries(), ids=[t for t, _ in _queries()])
def test_panel_sql_runs_on_postgres(pg_farm, title, sql):
    rows = pg_farm.execute(substitute(sql)).fetchall()
    assert rows, f"panel {title!r} returned no rows over the seeded sweep"


def test_panels_show_the_seeded_figures(pg_farm):
    queries = dict(_queries())
    states = dict(pg_farm.execute(substitute(queries["Job states"])).fetchall())
    assert states == {"done": 7, "failed": 1}
    flags = dict(pg_farm.execute(substitute(queries["Telemetry flags (measurements flagged)"])).fetchall())
    assert flags == {"throttled": 1, "unstable": 1}
    trend = pg_farm.execute(substitute(queries["p50 latency trend per GPU class (ms, mean over configurations)"]))
    [(_, metric, p50)] = trend.fetchall()
    assert metric == "gpu.nvidia-h100" and p50 == pytest.approx((2.0 + 1.0 + 1.002 + 0.5 + 4.0) / 5)
