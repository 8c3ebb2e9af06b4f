"""A converted model through the whole farm on the CPU: `farm run` with ONNX
Runtime on each source format, the same model to everything downstream
(`farm best model.pt2`, reuse, the source's name in reports, the source
stored beside its ONNX), and one-line errors for what a converter cannot do."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from tests.converters.conftest import env_for, home_with

pytestmark = pytest.mark.slow  # conversions and real workers: tens of seconds each

FAST = ["--duration-ms", "50", "--warmup-ms", "5", "--iterations", "5"]


def farm(args, home, cwd, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "farm", *args], env=env_for(home), cwd=cwd, capture_output=True,
                            text=True, timeout=900)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.parametrize("kind", ["torch-encoder", "keras-cnn", "tf-saved-model"])
def test_sweep_of_a_converted_model(kind, build_model, tmp_path, shared_conversions):
    built = build_model(kind)
    home = home_with(shared_conversions, tmp_path / "home")
    run = farm(["run", "--model", str(built.path), "--backend", "onnxruntime", "--batch", "1", "--batch", "3",
                "--format", "json", *FAST], home, tmp_path)
    assert f"converted {built.path.name} ({built.format}) to ONNX" in run.stderr
    rows = json.loads(run.stdout)
    assert [r["status"] for r in rows] == ["done", "done"], rows
    assert {r["model"] for r in rows} == {built.path.name}  # reports name the source
    assert all(r["accuracy_status"] in ("reference", "pass") for r in rows)

    # The same model downstream: found by its source file, reused on a second run.
    best = farm(["best", str(built.path), "--format", "json"], home, tmp_path)
    assert json.loads(best.stdout)
    again = farm(["run", "--model", str(built.path), "--backend", "onnxruntime", "--batch", "3", *FAST], home, tmp_path)
    assert "1 reused" in again.stderr
    fetched = farm(["fetch", str(built.path), "-o", str(tmp_path / "best.onnx"), "--format", "json"], home, tmp_path)
    assert json.loads(fetched.stdout) and (tmp_path / "best.onnx").is_file()

    # The source is stored content-addressed beside its ONNX; the record says how it was converted.
    with sqlite3.connect(home / "farm.db") as db:
        [(name, source_sha, record, artifact)] = db.execute(
            "select name, source_sha256, source, artifact_sha256 from models").fetchall()
    record = json.loads(record)
    assert name == built.path.name and record["sha256"] == source_sha
    from farm.store.base import hash_file

    stored = {hash_file(p) for p in (home / "artifacts").rglob("*") if p.is_file()}  # content-addressed
    assert record["artifact_sha256"] in stored and artifact in stored
    assert record["artifact_sha256"] == source_sha  # the source itself (a directory: its tar)
    assert record["converter"] and record["versions"] and record["opset"] and record["parity"]["pass"]


@pytest.mark.parametrize("kind,expected", [
    ("torch-qr", "Error: torch.onnx.export(dynamo=True) (torch {torch}) cannot convert node 'linalg_qr': op "
                 "aten.linalg_qr has no ONNX translation (no ONNX function or decomposition registered for it)"),
    ("tf-qr", "Error: tf2onnx {tf2onnx} cannot convert TensorFlow op Qr (node 'PartitionedCall/Qr'): "
              "tf2onnx has no ONNX translation for it"),
    ("keras-hashing", "Error: keras Model.export(format='onnx') (Keras {keras}, tf2onnx {tf2onnx}) cannot convert "
                      "TensorFlow op StringToHashBucketFast (node 'functional_1/hashing_1/hash'): tf2onnx has no "
                      "ONNX translation for it"),
])
def test_an_unsupported_op_is_one_line_naming_op_and_converter(kind, expected, build_model, tmp_path):
    from importlib import metadata

    built = build_model(kind)
    home = tmp_path / "home"
    result = farm(["run", "--model", str(built.path), "--backend", "onnxruntime"], home, tmp_path, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    versions = {name: metadata.version(dist) for name, dist in
                (("torch", "torch"), ("tf2onnx", "tf2onnx"), ("keras", "keras"))}
    assert line == expected.format(**versions)
    assert not (home / "farm.db").exists() or not sqlite3.connect(home / "farm.db").execute(
        "select count(*) from models").fetchone()[0]  # nothing changed


def test_a_missing_exporter_is_one_line_naming_the_extra(build_model, tmp_path):
    from tests.farm.cli.test_missing_extras import farm_without, one_error_line

    built = build_model("torch-cnn")
    line = one_error_line(farm_without("torch", ["run", "--model", str(built.path)], tmp_path))
    assert line == ("Error: converting a torch.export model needs torch, which is not installed here: "
                    "pip install 'engine-farm[torch]'")


def test_the_torch_backend_reads_the_program_itself(build_model, conversion_home):
    """A worker gives the torch backend the user's .pt2 (fetched from the
    store by the key recorded at submit), every other backend the ONNX."""
    from farm.spec import parse_spec
    from farm.service import submit
    from farm.store import open_store
    from farm.store.base import hash_file
    from workers.model_cache import source_model
    from workers.native_source import backend_model_path

    built = build_model("torch-cnn")
    spec = parse_spec({"model": str(built.path), "backends": ["onnxruntime"], "batch_sizes": [1]})
    submission = submit(spec, enqueue=False)
    assert submission.conversion["format"] == "torch.export"
    from sqlalchemy import select

    from farm.db import Model, session_scope

    with session_scope() as session:
        model = session.scalar(select(Model))
        sha, artifact, source = model.sha256, model.artifact_sha256, model.source
    store, cache = open_store(), conversion_home / "cache"
    onnx_model = source_model(sha, artifact, store, cache)
    native = backend_model_path("torch", onnx_model, store, cache)
    assert native.suffix == ".pt2" and hash_file(native) == hash_file(built.path) == source["sha256"]
    assert backend_model_path("onnxruntime", onnx_model, store, cache) == onnx_model.path


def test_torch_tensorrt_takes_a_pt2_for_a_gpu_class_and_refuses_other_formats(build_model, tmp_path,
                                                                                 shared_conversions):
    """Submit routes a .pt2 to the torch-tensorrt backend beside tensorrt (the
    engine from the program and the engine from its ONNX, side by side; GPU
    workers measure them) and refuses the backend, in one line, for a model
    it cannot read natively."""
    home = home_with(shared_conversions, tmp_path / "home")
    pt2 = build_model("torch-encoder")
    gpu = "gpu.nvidia-h100-80gb-hbm3"
    submitted = farm(["sweep", "submit", "--model", str(pt2.path), "--backend", "torch-tensorrt", "--backend",
                      "tensorrt", "--precision", "fp16", "--batch", "2", "--device", gpu, "--format", "json"],
                     home, tmp_path)
    answer = json.loads(submitted.stdout)
    assert (answer["jobs"], answer["queued"], answer["unsupported"]) == (2, 2, 0), answer
    with sqlite3.connect(home / "farm.db") as db:
        assert sorted(db.execute("select backend, precision, device_class from jobs").fetchall()) == [
            ("tensorrt", "fp16", gpu), ("torch-tensorrt", "fp16", gpu)]

    keras = build_model("keras-cnn")
    refused = farm(["sweep", "submit", "--model", str(keras.path), "--backend", "torch-tensorrt", "--device", gpu],
                   home, tmp_path, check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        f"Error: backend torch-tensorrt cannot take {keras.path.name} on gpu: torch-tensorrt builds engines from "
        "torch.export programs (.pt2), and this model was given as keras; the tensorrt backend builds from ONNX; drop "
        "it from the sweep's backends or change the model")
