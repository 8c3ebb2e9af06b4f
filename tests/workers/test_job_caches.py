"""A worker's caches: the job's model is prepared once per worker process,
and no cached file is used unless it still matches its recorded hash.

Jobs run through the real executor in this process (the worker's own code
path, minus Celery), against the embedded SQLite database and a local store.
"""

from __future__ import annotations

import os

import onnx
import pytest
import yaml

from farm.store.base import hash_file
from tests.conftest import FAST_MEASURE
from tests.onnx_models import make_cnn
from workers import artifact_index, model_cache, verified_files


def _with_initializer_inputs(path):
    """The tiny CNN with its weights also listed as graph inputs (as IR < 4
    exporters write them): a model the worker normalises."""
    model = onnx.load(str(path))
    for init in model.graph.initializer:
        model.graph.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, init.dims))
    onnx.save(model, str(path))
    return path


@pytest.fixture
def worker(farm_home, tmp_path):
    """submit(spec) -> job ids; run(job id) -> status, as a worker would."""
    from workers.backends.base import DeviceContext
    from workers.discovery import discover
    from workers.registry import take, worker_name

    model_cache.clear()
    device = next(d for d in discover() if d.kind == "cpu")
    name = worker_name(device)
    device_id = take(device, name)
    context = DeviceContext(kind="cpu", name=device.name, device_class=device.device_class)

    class Worker:
        model = _with_initializer_inputs(make_cnn(tmp_path / "legacy-style.onnx", dynamic_hw=False))

        def submit(self, batches=(1,), accuracy=True) -> list[str]:
            from sqlalchemy import select

            from farm.db import Job, session_scope
            from farm.service import submit
            from farm.spec import load_spec

            spec = tmp_path / "spec.yaml"
            spec.write_text(yaml.safe_dump({"name": "cache", "model": str(self.model), "backends": ["onnxruntime"],
                                            "precisions": ["fp32"], "batch_sizes": list(batches), "devices": "cpu",
                                            "measure": FAST_MEASURE, "accuracy": {"enabled": accuracy}}))
            sweep = submit(load_spec(spec), force=True, enqueue=False).sweep_id
            with session_scope() as session:
                return list(session.scalars(select(Job.id).where(Job.sweep_id == sweep).order_by(Job.seq)))

        def run(self, job_id: str) -> str:
            from workers.executor import execute

            return execute(job_id, name, context, device_id)

    yield Worker()
    model_cache.clear()


def _engine_outputs(job_id: str) -> list[str]:
    from farm.db import Job, session_scope
    from farm.store import open_store

    with session_scope() as session:
        key = session.get(Job, job_id).artifact_sha256
    blob = open_store().get_bytes(key)
    return [o.name for o in onnx.load_from_string(blob).graph.output]


def _rename_output(path, new: str, keep_times: bool) -> None:
    stat = path.stat()
    model = onnx.load(str(path))
    old = model.graph.output[0].name
    model.graph.output[0].name = new
    for node in model.graph.node:
        node.output[:] = [new if o == old else o for o in node.output]
    onnx.save(model, str(path))
    if keep_times:  # an editor that restores the timestamps: ctime still moves
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.parametrize("keep_times", [False, True])
def test_an_edited_normalised_copy_is_made_again_not_used(worker, farm_home, keep_times):
    [first], [second] = worker.submit(), worker.submit()
    assert worker.run(first) == "done"
    [copy] = (farm_home / "cache" / "models").glob("*.normalized.onnx")
    _rename_output(copy, "tampered", keep_times)
    assert worker.run(second) == "done"
    assert _engine_outputs(second) == ["logits"]
    assert [o.name for o in onnx.load(str(copy)).graph.output] == ["logits"]  # rebuilt in place


def test_an_edited_fetched_model_is_fetched_again(worker, farm_home):
    [first], [second] = worker.submit(), worker.submit()
    assert worker.run(first) == "done"
    [fetched] = [p for p in (farm_home / "cache" / "models").glob("*.onnx") if ".normalized" not in p.name]
    _rename_output(fetched, "tampered", keep_times=False)
    assert worker.run(second) == "done"
    assert hash_file(fetched) == fetched.name.removesuffix(".onnx")
    assert _engine_outputs(second) == ["logits"]


def test_model_prepared_once_per_worker_and_named_by_the_job_model(worker, monkeypatch):
    from farm.db import Model, session_scope

    reads, references = [], []
    real_read, real_reference = model_cache.read_model, model_cache._run_reference
    monkeypatch.setattr(model_cache, "read_model", lambda path: reads.append(path) or real_read(path))
    monkeypatch.setattr(model_cache, "_run_reference",
                        lambda model, feeds: references.append(model.sha256) or real_reference(model, feeds))
    jobs = worker.submit(batches=(1, 2)) + worker.submit(batches=(1, 2))
    assert [worker.run(job) for job in jobs] == ["done"] * 4
    assert len(reads) == 1  # one parse for four jobs
    assert len(references) == 2  # one reference run per distinct input shape
    with session_scope() as session:
        [model] = session.query(Model).all()
    source = next(iter(model_cache._models.values()))
    assert source.path.name.endswith(".normalized.onnx")
    # What backends are told the model is: the job's model, not the normalised copy's bytes.
    assert source.info.sha256 == model.sha256 != hash_file(source.path)


def test_a_prepared_precision_cites_the_job_model(worker, tmp_path):
    from farm.spec import MeasureConfig
    from farm.store import open_store
    from workers.backends.base import DeviceContext, JobContext
    from workers.precision.prepared import prepare

    assert worker.run(worker.submit()[0]) == "done"
    source = next(iter(model_cache._models.values()))
    shapes = {"images": {"min": [1, 3, 32, 32], "opt": [1, 3, 32, 32], "max": [1, 3, 32, 32]}}
    ctx = JobContext(job_id="t", precision="fp16", batch_size=1, shapes=shapes, model_path=source.path,
                     model=source.info, measure=MeasureConfig(), calibration={}, workdir=tmp_path,
                     device=DeviceContext(kind="cpu", name="cpu", device_class="cpu.test"), store=open_store())
    prepared = prepare(ctx, "fp16")
    assert prepared.info["model_sha256"] == source.sha256


def test_an_edited_published_derivative_is_downloaded_again(farm_home, tmp_path):
    from farm.store import open_store

    store, original = open_store(), b"derived model bytes"
    local = artifact_index.write_local("onnx-fp16", "k" * 64, ".onnx", original)
    artifact_index.publish(store, "onnx-fp16", "k" * 64, local, {}, "application/onnx")
    assert artifact_index.fetch(store, "onnx-fp16", "k" * 64, ".onnx") == local
    local.write_bytes(b"derived model bytes, edited")
    again = artifact_index.fetch(store, "onnx-fp16", "k" * 64, ".onnx")
    assert again == local and again.read_bytes() == original


def test_a_file_checked_once_is_hashed_again_only_when_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "blob"
    path.write_bytes(b"abc")
    sha = hash_file(path)
    hashed = []
    monkeypatch.setattr(verified_files, "hash_file", lambda p: hashed.append(p) or hash_file(p))
    assert verified_files.matches(path, sha) and verified_files.matches(path, sha)
    assert len(hashed) == 1
    stat = path.stat()
    path.write_bytes(b"abd")  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert not verified_files.matches(path, sha)
    assert not verified_files.matches(tmp_path / "missing", sha)


def test_a_backends_unsupported_reason_is_stored_masked(worker, monkeypatch):
    """A backend's reason is shown in every report: a credential it quotes
    (a URL it could not reach, say) never reaches the job table."""
    from farm.db import Job, Measurement, session_scope
    from farm.errors import BackendUnsupported
    from workers.backends.onnxruntime.backend import OnnxRuntimeBackend

    def refuse(self, artifact, ctx):
        raise BackendUnsupported("cannot load: license server postgresql://farm:Hunter2Secret@lic:5432/x refused")

    monkeypatch.setattr(OnnxRuntimeBackend, "load", refuse)
    (job_id,) = worker.submit()
    assert worker.run(job_id) == "unsupported"
    with session_scope() as session:
        job = session.get(Job, job_id)
        reason = session.query(Measurement).filter_by(job_id=job_id).one().unsupported_reason
    assert "postgresql://farm:***@lic:5432/x" in job.error and reason == job.error
    assert "Hunter2Secret" not in job.error
