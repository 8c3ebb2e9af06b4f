"""Issue 24 finding 1: any number of processes may make the first start at
once. Three `farm` commands on a fresh FARM_HOME printed a traceback in 5
of 10 trials ("table artifacts already exists", "duplicate column name:
workload"): the schema upgrade was guarded by an in-process lock only.

Each trial starts 4 commands at once on a fresh home (SQLite) or a fresh
database (PostgreSQL) and asserts: no traceback, every command's own
answer, and the schema at head afterwards. A command is the farm CLI's
``main`` in a process forked from this one: separate processes exactly as
from a shell, minus the second of interpreter start-up per command (40 of
them per test on a loaded 2-core machine took minutes), and the four reach
the database within milliseconds of each other, a harder race than a shell
makes."""

from __future__ import annotations

import os
import sys
import traceback
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TRIALS = 10


def _fork_farm(argv: list[str], env: dict[str, str], output: Path) -> int:
    """A `farm ARGV` process; its stdout and stderr go to ``output``."""
    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        os.environ.clear()
        os.environ.update(env)
        sink = open(output, "w", buffering=1)
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        sys.stdout = sys.stderr = sink
        from farm.cli import main

        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        sink.flush()
    except BaseException:  # noqa: BLE001 - the child must never return into pytest
        traceback.print_exc()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _run_at_once(commands: list[list[str]], env: dict[str, str], where: Path) -> list[tuple[list[str], int, str]]:
    from farm.db.session import dispose_engines

    dispose_engines()  # no pooled connection crosses the fork
    children = [(argv, where / f"out-{n}.txt") for n, argv in enumerate(commands)]
    pids = [_fork_farm(argv, env, output) for argv, output in children]
    results = []
    for pid, (argv, output) in zip(pids, children):
        _, status = os.waitpid(pid, 0)
        results.append((argv, os.waitstatus_to_exitcode(status), output.read_text()))
    return results


def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    from farm.db.session import alembic_config

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _revision(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()


def _no_traceback(results) -> None:
    for argv, code, output in results:
        assert "Traceback" not in output, f"farm {' '.join(argv)} (exit {code}):\n{output}"


@pytest.mark.slow
def test_concurrent_first_start_on_sqlite(tmp_path, tiny_cnn):
    """Three readers and a submit, which also makes the embedded broker's tables."""
    submit = ["sweep", "submit", "--model", str(tiny_cnn), "--device", "cpu", "--precision", "fp32", "--batch", "1",
              "--profile", "p:images=1x3x16x16/1x3x16x16/1x3x16x16"]
    commands = [["sweep", "list"], ["workers"], submit, ["db", "upgrade"]]
    head = _head_revision()
    for trial in range(TRIALS):
        home = tmp_path / f"home-{trial}"
        env = {**os.environ, "FARM_HOME": str(home)}
        for name in ("FARM_DB_URL", "FARM_BROKER_URL", "FARM_STORE_URL"):
            env.pop(name, None)
        results = _run_at_once(commands, env, tmp_path)
        _no_traceback(results)
        answers = {" ".join(argv): (code, output.strip()) for argv, code, output in results}
        submitted = answers.pop(" ".join(submit))
        assert submitted[0] == 0, submitted[1]
        assert answers["sweep list"][0] == 0 and answers["sweep list"][1].count("\n") <= 2  # none, or the new sweep
        del answers["sweep list"]
        assert answers == {"workers": (0, "no live workers"), "db upgrade": (0, f"database at revision {head}")}
        assert _revision(f"sqlite:///{home / 'farm.db'}") == head


@pytest.mark.slow
@pytest.mark.postgres
def test_concurrent_first_upgrade_on_postgresql(tmp_path):
    """A fresh PostgreSQL database: several hosts run 'farm db upgrade' at
    once (as a deploy script on each would); every command that reads
    before the schema exists says so in one line."""
    head = _head_revision()
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        for trial in range(TRIALS):
            name = f"i24_first_start_{uuid.uuid4().hex[:10]}"
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
                env = {**os.environ, "FARM_DB_URL": url, "FARM_HOME": f"/tmp/{name}"}
                results = _run_at_once([["db", "upgrade"]] * 3 + [["sweep", "list"]], env, tmp_path)
                _no_traceback(results)
                for argv, code, output in results:
                    if argv == ["db", "upgrade"]:
                        assert (code, output.strip()) == (0, f"database at revision {head}"), output
                    else:
                        assert (code, output.strip()) in ((0, "no sweeps"), (1, output.strip())), output
                        if code == 1:
                            assert output.startswith("Error: ") and "farm db upgrade" in output, output
                            assert len(output.strip().splitlines()) == 1, output
                assert _revision(url) == head
            finally:
                with admin.connect() as connection:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
