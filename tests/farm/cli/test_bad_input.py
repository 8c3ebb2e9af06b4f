"""Every bad input: one 'Error: ...' line on stderr, exit 1, no traceback,
database and store unchanged."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GOOD_PROFILE = "p:images=1x3x32x32/2x3x32x32/4x3x32x32"


def farm(args, env, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "farm", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def snapshot(home: Path) -> dict:
    import sqlite3

    state = {}
    db = home / "farm.db"
    if db.exists():
        with sqlite3.connect(db) as connection:
            tables = [r[0] for r in connection.execute("select name from sqlite_master where type='table'")]
            state = {t: connection.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}
    store = home / "artifacts"
    state["artifacts"] = sorted(str(p) for p in store.rglob("*")) if store.exists() else []
    return state


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, tiny_cnn):
    """One home with one finished sweep, shared by the cases below (none of
    them may change it), so 'unchanged' means something."""
    cwd = tmp_path_factory.mktemp("bad-input")
    (cwd / "models").mkdir()
    shutil.copy(tiny_cnn, cwd / "models" / "det.onnx")
    (cwd / "notes.txt").write_text("not a model")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env["FARM_HOME"] = str(cwd / "home")
    result = farm(["run", "--model", "models/det.onnx", "--profile", GOOD_PROFILE,
                   "--warmup-ms", "0", "--duration-ms", "20", "--iterations", "3"], env, cwd)
    assert result.returncode == 0, result.stderr
    return cwd, env, cwd / "home"


def spec(tmp_path, body: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text("model: models/det.onnx\n" + body)
    return str(path)


CASES = {
    "missing model": (["run", "--model", "nope.onnx"], "Error: model file not found: nope.onnx"),
    "not onnx": (["run", "--model", "notes.txt"], "Error: notes.txt is not an ONNX model (onnx could not parse it)"),
    "unknown key": (["run", "@spec:colour: red\n"], "Error: unknown key 'colour' in spec (allowed: "),
    "unknown backend": (["run", "--model", "models/det.onnx", "--backend", "tvm", "--profile", GOOD_PROFILE],
                        "Error: unknown backend 'tvm' (allowed: "),
    "unknown precision": (["run", "--model", "models/det.onnx", "--precision", "int4"],
                          "Error: spec field 'precisions[0]': 'int4' is not allowed (allowed: fp32, fp16, bf16, int8, fp8)"),
    "batch zero": (["sweep", "submit", "--model", "models/det.onnx", "--batch", "0"],
                   "Error: spec field 'batch_sizes[0]': batch size must be > 0 (got 0)"),
    "min > max": (["run", "--model", "models/det.onnx", "--profile", "p:images=4x3x32x32/2x3x32x32/1x3x32x32"],
                  "Error: spec field 'profiles[0].inputs.images': dimension 0 needs min <= opt <= max (got 4, 2, 1)"),
    "shape mismatch": (["run", "--model", "models/det.onnx", "--profile", "p:images=1x3x32/1x3x32/1x3x32"],
                       "Error: spec field 'profiles[0].inputs.images': rank 3 does not match model input 'images'"),
    "wrong input": (["run", "--model", "models/det.onnx", "--profile", "p:pixels=1x3x32x32/1x3x32x32/1x3x32x32"],
                    "Error: spec field 'profiles[0].inputs.pixels': the model has no input 'pixels' (inputs: images)"),
    "unknown sweep status": (["sweep", "status", "0000deadbeef"],
                             "Error: no sweep with id '0000deadbeef' (see 'farm sweep list')"),
    "unknown sweep report": (["report", "0000deadbeef"], "Error: no sweep with id '0000deadbeef'"),
    "unknown sweep cancel": (["sweep", "cancel", "0000deadbeef"], "Error: no sweep with id '0000deadbeef'"),
    "fetch nothing finished": (["fetch", "--sweep", "0000deadbeef", "-o", "x.bin"], "Error: no sweep with id"),
    "fetch no result for device": (["fetch", "models/det.onnx", "--device", "gpu.nvidia-l4", "-o", "x.bin"],
                                   "Error: no finished result for gpu.nvidia-l4 meets the constraints"),
    "unknown option": (["run", "--colour", "red"], "Error: No such option '--colour'."),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_and_changes_nothing(name, seeded):
    cwd, env, home = seeded
    args, expected = CASES[name]
    args = [spec(cwd, a[len("@spec:"):]) if a.startswith("@spec:") else a for a in args]
    before = snapshot(home)
    assert before["jobs"] == 1 and before["measurements"] == 1
    result = farm(args, env, cwd)
    assert result.returncode == 1
    assert result.stderr.startswith(expected), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert snapshot(home) == before
    assert not (cwd / "x.bin").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
def test_unreadable_model(tmp_path, cli_env, models_dir):
    model = models_dir / "det.onnx"
    model.chmod(0)
    result = farm(["run", "--model", str(model)], cli_env, tmp_path)
    assert result.returncode == 1 and result.stderr.startswith("Error: cannot read model")


ENV_CASES = {
    "garbage db url": ({"FARM_DB_URL": "garbage"}, ["sweep", "list"],
                       "Error: FARM_DB_URL 'garbage' is not a usable database URL"),
    "database down": ({"FARM_DB_URL": "postgresql+psycopg://farm:secret@127.0.0.1:1/farm"}, ["sweep", "list"],
                      "Error: cannot connect to the database at postgresql+psycopg://farm:***@127.0.0.1:1/farm"),
    "broker down": ({"FARM_BROKER_URL": "redis://:secret@127.0.0.1:1/0"},
                    ["sweep", "submit", "--model", "models/det.onnx", "--profile", GOOD_PROFILE],
                    "Error: cannot reach the broker at redis://:***@127.0.0.1:1/0"),
    "bad dashboard port": ({}, ["dashboard", "--port", "99999"], "Error: Invalid value for '--port'"),
    "report to a missing directory": ({}, ["report", "@sweep", "-o", "/nonexistent/x.csv"],
                                      "Error: directory /nonexistent does not exist"),
}


@pytest.mark.parametrize("name", sorted(ENV_CASES))
def test_bad_settings_are_one_line_and_change_nothing(name, seeded):
    cwd, env, home = seeded
    extra, args, expected = ENV_CASES[name]
    if "@sweep" in args:
        import json

        sweep_id = json.loads(farm(["sweep", "list", "--format", "json"], env, cwd).stdout)[0]["sweep_id"]
        args = [sweep_id if a == "@sweep" else a for a in args]
    before = snapshot(home)
    result = farm(args, {**env, **extra}, cwd)
    assert result.returncode == 1
    assert result.stderr.startswith(expected), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert snapshot(home) == before
