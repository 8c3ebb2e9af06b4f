"""Issue 24 finding 6: a NaN or infinity in a result is stored and read back
as such on every database. On PostgreSQL the JSON column rejected the bare
NaN token ("Token NaN is invalid"): a valid Sqrt model on the farm's own
random inputs was measured, then its result write failed and the job ended
`failed` with the measurement gone (on SQLite it finished `done`)."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import onnx
import pytest
from onnx import TensorProto, helper

from farm.db import Artifact, session_scope, utcnow

ODD = {"nan": math.nan, "inf": math.inf, "neg": -math.inf, "nested": [1.5, {"x": math.nan}],
       "finite": 2.0, "looks_tagged": {"$float": "nope"}}


def _round_trip(url: str) -> dict:
    with session_scope(url) as session:
        session.add(Artifact(sha256="f" * 64, size_bytes=1, kind="engine", media_type="x", meta=ODD,
                             created_at=utcnow()))
    with session_scope(url) as session:
        return session.get(Artifact, "f" * 64).meta


def _same(got: dict) -> None:
    assert math.isnan(got["nan"]) and got["inf"] == math.inf and got["neg"] == -math.inf
    assert got["nested"][0] == 1.5 and math.isnan(got["nested"][1]["x"])
    assert got["finite"] == 2.0 and got["looks_tagged"] == {"$float": "nope"}


def test_non_finite_json_round_trips_on_sqlite(farm_home):
    _same(_round_trip(f"sqlite:///{farm_home / 'farm.db'}"))


@pytest.mark.postgres
def test_non_finite_json_round_trips_on_postgresql(pg_url):
    _same(_round_trip(pg_url))


def _sqrt_model(path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])
    graph = helper.make_graph([helper.make_node("Sqrt", ["x"], ["y"])], "sqrt", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


@pytest.mark.slow
@pytest.mark.postgres
def test_sqrt_model_on_random_inputs_ends_done_on_postgresql(pg_url, tmp_path):
    """Random inputs include negatives: the outputs hold NaN, so do the
    per-output accuracy figures; the job ends done with its measurement."""
    from sqlalchemy import select

    from farm.db import Job, Measurement

    _sqrt_model(tmp_path / "sqrt.onnx")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env.update(FARM_HOME=str(tmp_path / "home"), FARM_DB_URL=pg_url)
    run = subprocess.run([sys.executable, "-m", "farm", "run", "--model", "sqrt.onnx", "--device", "cpu",
                          "--precision", "fp32", "--batch", "2", "--duration-ms", "20", "--warmup-ms", "0",
                          "--iterations", "3"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    with session_scope(pg_url) as session:
        jobs = list(session.scalars(select(Job)))
        assert [job.status for job in jobs] == ["done"], [job.error for job in jobs]
        measurement = session.scalars(select(Measurement).where(Measurement.job_id == jobs[0].id)).one()
    assert measurement.measured and measurement.p50_ms > 0
    per_output = measurement.accuracy["per_output"]["y"]
    assert not math.isfinite(per_output["max_abs_error"]), per_output  # NaN outputs: a NaN or an infinite error
