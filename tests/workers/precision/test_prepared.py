"""The precision-transformed model is made once per (model, precision,
options, calibration) and reused across batch sizes and workers."""

from __future__ import annotations

from farm.model_info import read_model
from farm.spec import MeasureConfig
from farm.store import open_store
from workers import artifact_index
from workers.backends.base import DeviceContext, JobContext
from workers.precision.prepared import calibration_shapes, describe, prepare

CPU = DeviceContext(kind="cpu", name="cpu", device_class="cpu.x86_64.test")


def ctx(tmp_path, model, batch, precision="fp16", samples=2) -> JobContext:
    workdir = tmp_path / f"w{batch}{precision}{samples}"
    workdir.mkdir(exist_ok=True)
    shapes = {"x": {"min": [batch, 3, 48, 64], "opt": [batch, 3, 48, 96], "max": [batch, 3, 48, 128]}}
    return JobContext(job_id="t", precision=precision, batch_size=batch, shapes=shapes, model_path=model,
                      model=read_model(model), measure=MeasureConfig(), calibration={"samples": samples, "seed": 0},
                      device=CPU, workdir=workdir, store=open_store())


def test_fp16_made_once_and_reused_across_batch_sizes(farm_home, tmp_path, rec_model):
    first = prepare(ctx(tmp_path, rec_model, 1), "fp16", {"consumer": "x"})
    second = prepare(ctx(tmp_path, rec_model, 4), "fp16", {"consumer": "x"})
    assert first.info["reused"] is False and second.info["reused"] is True
    assert first.path == second.path and first.kind == "onnx-fp16"
    # Published: another worker (empty local cache) finds it in the store.
    first.path.unlink()
    again = prepare(ctx(tmp_path, rec_model, 2), "fp16", {"consumer": "x"})
    assert again.info["reused"] is True and again.path.exists()
    assert artifact_index.lookup("onnx-fp16", first.info["key"]) is not None


def test_calibration_runs_at_batch_one_and_is_part_of_the_key(tmp_path, rec_model):
    assert calibration_shapes(ctx(tmp_path, rec_model, 4, "int8")) == {"x": (1, 3, 48, 96)}
    batch4 = describe(ctx(tmp_path, rec_model, 4, "int8"), "int8", {})
    batch1 = describe(ctx(tmp_path, rec_model, 1, "int8"), "int8", {})
    more_samples = describe(ctx(tmp_path, rec_model, 1, "int8", samples=3), "int8", {})
    assert artifact_index.index_key(batch4) == artifact_index.index_key(batch1)
    assert artifact_index.index_key(more_samples) != artifact_index.index_key(batch1)
    assert "calibration" not in describe(ctx(tmp_path, rec_model, 1, "fp16"), "fp16", {})


def test_fp32_is_the_source_model(tmp_path, rec_model):
    prepared = prepare(ctx(tmp_path, rec_model, 1, "fp32"), "fp32")
    assert prepared.path == rec_model and prepared.kind is None
