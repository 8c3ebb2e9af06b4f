"""Every bad input (the cases are in bad_input_cases.py): every case exits 1 with exactly
one ``Error: ...`` line on stderr, no traceback, no password, and writes
nothing: no row, no blob, no output file.

Cases run in-process through ``farm.cli.main`` (the console script's own
function, with its error handling) under click's CliRunner isolation, so
200+ cases take seconds; a few run as real ``python -m farm`` processes to
prove the entry point behaves the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.farm.cli.bad_input_cases import COMMAND_CASES, ENV_CASES, GOOD, SECRET, SPEC_CASES
from tests.onnx_models import make_cnn


def _single_input_model(path: Path, name: str, elem_type: int, dims: list) -> Path:
    node = helper.make_node("Identity", [name], ["out"])
    graph = helper.make_graph([node], "one", [helper.make_tensor_value_info(name, elem_type, dims)],
                              [helper.make_tensor_value_info("out", elem_type, dims)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _make_files(cwd: Path, tiny_cnn: Path) -> None:
    models, data = cwd / "models", cwd / "data"
    models.mkdir()
    data.mkdir()
    shutil.copy(tiny_cnn, models / "det.onnx")
    make_cnn(models / "batch2g.onnx", fixed_batch=2**31, dynamic_hw=False)
    make_cnn(models / "fixed_hw.onnx", dynamic_hw=False)
    _single_input_model(models / "wide.onnx", "x", TensorProto.FLOAT, ["batch", 2**31])
    _single_input_model(models / "strings.onnx", "text", TensorProto.STRING, ["batch"])
    external = onnx.load(str(tiny_cnn))
    onnx.save(external, str(models / "external.onnx"), save_as_external_data=True, size_threshold=0,
              location="external.bin")
    leaky = onnx.load(str(models / "external.onnx"), load_external_data=False)  # its data named outside its folder
    for tensor in leaky.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../external.bin"
    (models / "external.onnx").write_bytes(leaky.SerializeToString())
    (cwd / "notes.txt").write_text("not a model")
    (cwd / "empty.onnx").write_bytes(b"")
    (cwd / "binary.yaml").write_bytes(b"model: \xff\xfe\x00models/det.onnx\n")
    (cwd / "huge.yaml").write_text("model: models/det.onnx\nname: " + "n" * (10 * 1024 * 1024) + "\n")
    samples = np.zeros((4, 3, 32, 32), np.float32)
    np.save(data / "one.npy", samples)
    np.savez(data / "empty.npz", images=np.zeros((0, 3, 32, 32), np.float32))
    np.savez(data / "renamed.npz", pixels=samples)
    np.savez(data / "ints.npz", images=np.zeros((4, 3, 32, 32), np.int64))
    np.savez(data / "shape.npz", images=np.zeros((4, 3, 16, 16), np.float32))
    np.savez(data / "objects.npz", images=np.array([{"a": 1}], dtype=object))
    np.savez(data / "good.npz", images=samples)
    (data / "truncated.npz").write_bytes((data / "good.npz").read_bytes()[:200])
    _make_issue24_files(models, data, samples)


def _tiny(path: Path, nodes, inputs, outputs, opset: int = 17, ir: int = 8, domains=()) -> None:
    graph = helper.make_graph(nodes, "tiny", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]
                              + [helper.make_opsetid(d, 1) for d in domains])
    model.ir_version = ir
    onnx.save(model, str(path))


def _make_issue24_files(models: Path, data: Path, samples) -> None:
    """Models and data that were accepted at submit and then failed every
    job (issue 24, finding 11): each is now refused at submit."""
    def value(name, elem=TensorProto.FLOAT):
        return helper.make_tensor_value_info(name, elem, ["batch", 4])

    relu = helper.make_node("Relu", ["x"], ["y"])
    _tiny(models / "opset99.onnx", [relu], [value("x")], [value("y")], opset=99)
    _tiny(models / "ir99.onnx", [relu], [value("x")], [value("y")], ir=99)
    _tiny(models / "bf16.onnx", [relu], [value("x", TensorProto.BFLOAT16)], [value("y", TensorProto.BFLOAT16)])
    _tiny(models / "twice.onnx", [helper.make_node("Add", ["x", "x"], ["y"])], [value("x"), value("x")], [value("y")])
    _tiny(models / "custom.onnx", [helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")], [value("x")],
          [value("y")], domains=["com.example"])
    _tiny(models / "dangling.onnx", [helper.make_node("Add", ["x", "ghost"], ["y"])], [value("x")], [value("y")])
    _tiny(models / "no_outputs.onnx", [relu], [value("x")], [])
    make_cnn(models / "batch1.onnx", fixed_batch=1)
    for name, fill in (("nan", np.nan), ("inf", np.inf)):
        bad = samples.copy()
        bad[1, 2, 3, 4] = fill
        np.savez(data / f"{name}.npz", images=bad)
    np.savez(data / "complex.npz", images=samples.astype(np.complex64))
    import io
    import zipfile

    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, samples[:1])  # one sample, its header claiming 4096
    header = buffer.getvalue().replace(b"(1, 3, 32, 32)", b"(4096, 3, 32, 32)")
    with zipfile.ZipFile(data / "liar.npz", "w") as archive:
        archive.writestr("images.npy", header)


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FARM_", "AWS_"))}
    return env


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, tiny_cnn):
    """One home with one finished sweep (a real run through the real
    entry point); no case may change it, so 'unchanged' means something."""
    cwd = tmp_path_factory.mktemp("bad-input-suite")
    _make_files(cwd, tiny_cnn)
    env = {**_clean_env(), "FARM_HOME": str(cwd / "home")}
    result = subprocess.run([sys.executable, "-m", "farm", "run", "--model", "models/det.onnx", "--profile", GOOD,
                             "--warmup-ms", "0", "--duration-ms", "20", "--iterations", "3", "--format", "json"],
                            env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)[0]
    assert job["status"] == "done" and job["artifact_sha256"], job
    return cwd, env, cwd / "home", job


def snapshot(cwd: Path, home: Path) -> dict:
    """Row counts of every table, the store's objects with their hashes, and
    every file under the working directory (outputs included)."""
    state: dict = {}
    with sqlite3.connect(home / "farm.db") as connection:
        tables = [r[0] for r in connection.execute("select name from sqlite_master where type='table'")]
        state["rows"] = {t: connection.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables}
    store = home / "artifacts"
    state["blobs"] = sorted((str(p.relative_to(store)), hashlib.sha256(p.read_bytes()).hexdigest())
                            for p in store.rglob("*") if p.is_file())
    state["files"] = sorted(str(p.relative_to(cwd)) for p in cwd.rglob("*")
                            if home not in p.parents and p != home and p.name != "bad.yaml")
    return state


def materialize(args: list[str], cwd: Path, sweep_id: str) -> list[str]:
    out = []
    for arg in args:
        if arg.startswith("@spec:"):
            (cwd / "bad.yaml").write_text("model: models/det.onnx\n" + arg[len("@spec:"):])
            arg = "bad.yaml"
        elif arg.startswith("@raw:"):
            (cwd / "bad.yaml").write_text(arg[len("@raw:"):])
            arg = "bad.yaml"
        elif arg.startswith("@file:"):
            arg = arg[len("@file:"):]
        elif arg == "@sweep":
            arg = sweep_id
        out.append(arg)
    return out


def run_in_process(args: list[str], env: dict, cwd: Path) -> tuple[int, str, str]:
    """``farm.cli.main(args)`` with its own stdout/stderr and environment."""
    from click.testing import CliRunner

    from farm.cli import main
    from farm.db.session import dispose_engines

    overrides = {name: None for name in os.environ if name.startswith(("FARM_", "AWS_"))}
    overrides.update(env)
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        with CliRunner().isolation(env=overrides) as (out, err, _):
            try:
                main(args)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            sys.stdout.flush()
            sys.stderr.flush()
            stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    finally:
        os.chdir(previous)
        dispose_engines()
    return code, stdout, stderr


def assert_one_clean_error(code: int, stderr: str, expected: str) -> None:
    assert code == 1, stderr
    assert stderr.startswith(expected), stderr[:2000]
    assert stderr.count("\n") == 1 and stderr.endswith("\n"), stderr[:2000]
    assert "Traceback" not in stderr and SECRET not in stderr
    assert len(stderr) < 2100


ALL_CASES = {**{f"spec: {k}": (v[0], v[1], v[2] if len(v) > 2 else {}) for k, v in SPEC_CASES.items()},
             **{f"command: {k}": (v[0], v[1], v[2] if len(v) > 2 else {}) for k, v in COMMAND_CASES.items()},
             **{f"env: {k}": (v[1], v[2], v[0]) for k, v in ENV_CASES.items()}}


def test_the_suite_has_at_least_125_cases():
    assert len(ALL_CASES) >= 125


@pytest.mark.parametrize("name", list(ALL_CASES))
def test_bad_input_is_one_line_and_writes_nothing(name, seeded):
    cwd, env, home, job = seeded
    args, expected, extra = ALL_CASES[name]
    if ("/sys/" in " ".join(args) or "/proc/" in " ".join(args)) and not Path("/proc/self").exists():
        pytest.skip("needs Linux /proc and /sys")
    args = materialize(args, cwd, job["sweep_id"])
    before = snapshot(cwd, home)
    code, _, stderr = run_in_process(args, {"FARM_HOME": str(home), **extra}, cwd)
    assert_one_clean_error(code, stderr, expected)
    assert snapshot(cwd, home) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
def test_unreadable_model(seeded, tmp_path):
    cwd, env, home, job = seeded
    model = tmp_path / "locked.onnx"
    shutil.copy(cwd / "models" / "det.onnx", model)
    model.chmod(0)
    code, _, stderr = run_in_process(["run", "--model", str(model)], {"FARM_HOME": str(home)}, cwd)
    assert_one_clean_error(code, stderr, f"Error: cannot read model {model}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
@pytest.mark.parametrize("command", [["report", "@sweep", "-o", "ro/x.csv"], ["fetch", "models/det.onnx", "-o", "ro/x"]])
def test_output_into_a_read_only_directory(command, seeded):
    cwd, env, home, job = seeded
    (cwd / "ro").mkdir(exist_ok=True)
    (cwd / "ro").chmod(0o555)
    try:
        before = snapshot(cwd, home)
        code, _, stderr = run_in_process(materialize(command, cwd, job["sweep_id"]), {"FARM_HOME": str(home)}, cwd)
        assert_one_clean_error(code, stderr, "Error: cannot write to directory ro")
        assert snapshot(cwd, home) == before
    finally:
        (cwd / "ro").chmod(0o755)


@pytest.mark.parametrize("damage", ["tampered", "deleted"])
def test_fetch_of_a_damaged_artifact_is_one_line_and_writes_nothing(damage, seeded):
    cwd, env, home, job = seeded
    blob = home / "artifacts" / job["artifact_sha256"][:2] / job["artifact_sha256"][2:]
    original = blob.read_bytes()
    try:
        if damage == "tampered":
            blob.write_bytes(b"tampered" + original[8:])
        else:
            blob.unlink()
        before = snapshot(cwd, home)
        code, _, stderr = run_in_process(["fetch", "models/det.onnx", "-o", "best.onnx"], {"FARM_HOME": str(home)}, cwd)
        said = "is corrupt in the store" if damage == "tampered" else "is not in the store"
        assert_one_clean_error(code, stderr, f"Error: artifact {job['artifact_sha256']} {said}")
        assert "nothing was written" in stderr and not (cwd / "best.onnx").exists()
        assert snapshot(cwd, home) == before
    finally:
        blob.write_bytes(original)


SUBPROCESS_CASES = ["spec: yaml bomb in name", "spec: threads lots", "env: db url bad port", "command: report into /proc"]


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_the_real_entry_point_agrees(name, seeded):
    """The same cases through a real ``python -m farm`` process."""
    cwd, env, home, job = seeded
    args, expected, extra = ALL_CASES[name]
    args = materialize(args, cwd, job["sweep_id"])
    before = snapshot(cwd, home)
    result = subprocess.run([sys.executable, "-m", "farm", *args], env={**env, **extra}, cwd=cwd,
                            capture_output=True, text=True, timeout=120)
    assert_one_clean_error(result.returncode, result.stderr, expected)
    assert snapshot(cwd, home) == before


@pytest.mark.parametrize("url", [f"redis://:{SECRET}@127.0.0.1:notaport/0", f"redis://:{SECRET}@[::1/0"])
def test_worker_start_refuses_a_malformed_broker_url_in_one_line(url, seeded):
    """Not a crash loop of tracebacks from every worker process."""
    cwd, env, home, job = seeded
    before = snapshot(cwd, home)
    result = subprocess.run([sys.executable, "-m", "farm", "worker", "start", "--device", "cpu"],
                            env={**env, "FARM_BROKER_URL": url}, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert_one_clean_error(result.returncode, result.stderr, "Error: FARM_BROKER_URL 'redis://:***@")
    assert "is not a usable broker URL" in result.stderr
    assert snapshot(cwd, home) == before


@pytest.mark.postgres
def test_a_never_upgraded_database_is_one_line_and_stays_empty(seeded):
    from sqlalchemy import create_engine, inspect, text

    cwd, env, home, job = seeded
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    name = f"farm_never_{os.getpid()}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:5432/{name}"  # trust auth: the password is unused
    try:
        for args in (["sweep", "list"], ["sweep", "submit", "--model", "models/det.onnx", "--profile", GOOD],
                     ["best", "models/det.onnx"], ["report", "x"]):
            code, _, stderr = run_in_process(args, {"FARM_HOME": str(home), "FARM_DB_URL": url}, cwd)
            assert_one_clean_error(code, stderr, f"Error: the database at postgresql+psycopg://postgres:***@127.0.0.1:"
                                                 f"5432/{name} has no farm schema yet; run 'farm db upgrade' once")
        probe = create_engine(url.replace(f":{SECRET}", ""))
        assert inspect(probe).get_table_names() == []
        probe.dispose()
        assert not list((home / "artifacts").rglob("*.partial"))
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
def test_a_database_role_without_table_privileges_is_one_line(seeded):
    """Every command, not a 80-105 line traceback (issue 24, finding 11)."""
    from sqlalchemy import create_engine, text

    cwd, env, home, job = seeded
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    name, role = f"farm_noperm_{os.getpid()}", f"farm_noperm_{os.getpid()}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
        connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    owner_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    url = f"postgresql+psycopg://{role}:{SECRET}@127.0.0.1:5432/{name}"  # trust auth: the password is unused
    try:
        code, _, stderr = run_in_process(["db", "upgrade"], {"FARM_HOME": str(home), "FARM_DB_URL": owner_url}, cwd)
        assert code == 0, stderr
        for grant in ("", f'GRANT SELECT ON alembic_version TO "{role}"'):
            if grant:
                owner = create_engine(owner_url, isolation_level="AUTOCOMMIT")
                with owner.connect() as connection:
                    connection.execute(text(grant))
                owner.dispose()
            for args in (["sweep", "list"], ["sweep", "submit", "--model", "models/det.onnx", "--profile", GOOD],
                         ["report", "x"]):
                before = snapshot(cwd, home)
                code, _, stderr = run_in_process(args, {"FARM_HOME": str(home), "FARM_DB_URL": url}, cwd)
                assert_one_clean_error(code, stderr, f"Error: the database at postgresql+psycopg://{role}:***@127.0.0."
                                                     f"1:5432/{name} refused this command: permission denied for table")
                assert snapshot(cwd, home) == before
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()
