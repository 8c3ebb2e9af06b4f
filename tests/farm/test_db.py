from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from farm.db import upgrade

HEAD = "0008_fix22_accuracy_metric"
TABLES = {"alembic_version", "artifacts", "devices", "jobs", "measurements", "models", "sweeps", "searches",
          "search_candidates", "finals", "final_rounds"}


def test_upgrade_creates_the_schema_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'farm.db'}"
    assert upgrade(url) == HEAD
    assert set(inspect(create_engine(url)).get_table_names()) >= TABLES
    assert "build" in {c["name"] for c in inspect(create_engine(url)).get_columns("jobs")}
    assert upgrade(url) == HEAD  # idempotent


@pytest.mark.postgres
def test_farm_db_upgrade_on_postgresql(tmp_path):
    import psycopg

    name = f"farm_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        result = subprocess.run([sys.executable, "-m", "farm", "db", "upgrade"], capture_output=True, text=True,
                                env={"FARM_DB_URL": url, "FARM_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().startswith("database at revision ")
        engine = create_engine(url)
        assert set(inspect(engine).get_table_names()) >= TABLES
        engine.dispose()
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_published_schema_file_matches_the_code():
    from farm.spec_schema import SPEC_SCHEMA

    published = Path(__file__).resolve().parents[2] / "docs" / "spec.schema.json"
    assert json.loads(published.read_text()) == SPEC_SCHEMA
