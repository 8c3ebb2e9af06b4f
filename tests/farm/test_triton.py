"""Triton repositories: every generated config parses against Triton's own
model_config protobuf (tritonclient), with the winners' settings."""

from __future__ import annotations

import json

import pytest

from farm.errors import UserError
from farm.triton import ClassWinner, parse, write_repository

INPUTS = [{"name": "images", "dtype": "float32", "dims": ["batch", 3, 320, 320]}]
OUTPUTS = [{"name": "output0", "dtype": "float32", "rank": 3}]


def _winner(device_class, cc, batch, delay, instances, backend="tensorrt"):
    shape = [batch, 3, 320, 320]
    return ClassWinner(device_class=device_class, job_id=f"job-{device_class}", backend=backend, precision="fp16",
                       batch_size=batch, artifact_sha256=f"sha-{device_class}", compute_capability=cc,
                       kind="gpu" if device_class.startswith("gpu") else "cpu", queue_delay_us=delay,
                       instances=instances, profile_ranges={"images": {"min": shape, "opt": shape, "max": shape}})


def _fetch(key, path):
    path.write_bytes(key.encode())


def _config(path):
    return parse(path.read_text())


def test_plans_per_compute_capability_and_per_class_configs(tmp_path):
    winners = [_winner("gpu.nvidia-h100-80gb", "9.0", 8, 500, 2), _winner("gpu.nvidia-h200", "9.0", 16, 1000, 3),
               _winner("gpu.nvidia-l4", "8.9", 4, 2000, 1)]
    manifest = write_repository(tmp_path, "yolo", winners, INPUTS, OUTPUTS, _fetch)
    model = tmp_path / "yolo"
    shared = _config(model / "config.pbtxt")
    assert shared.platform == "tensorrt_plan" and shared.max_batch_size == 4  # every plan takes it
    # H100 and H200 share 9.0: the first (sorted) gets it, each keeps its own file in configs/
    assert dict(shared.cc_model_filenames) == {"9.0": "model_gpu.nvidia-h100-80gb.plan",
                                               "8.9": "model_gpu.nvidia-l4.plan"}
    assert manifest["shared_compute_capability"] == ["9.0"]
    assert [list(i.dims) for i in shared.input] == [[3, 320, 320]] and shared.input[0].data_type == 11  # FP32
    assert list(shared.output[0].dims) == [-1, -1]
    for w in winners:
        own = _config(model / "configs" / f"{w.device_class}.pbtxt")
        assert own.max_batch_size == w.batch_size and own.default_model_filename == w.filename
        assert list(own.dynamic_batching.preferred_batch_size) == [w.batch_size]
        assert own.dynamic_batching.max_queue_delay_microseconds == w.queue_delay_us
        assert own.instance_group[0].count == w.instances and list(own.instance_group[0].profile) == ["0"]
        assert own.instance_group[0].kind == 1  # KIND_GPU
        assert not own.cc_model_filenames
        assert (model / "1" / w.filename).read_bytes() == w.artifact_sha256.encode()
    assert json.loads((model / "farm-export.json").read_text())["classes"]["gpu.nvidia-l4"]["job_id"] == \
        "job-gpu.nvidia-l4"


def test_onnxruntime_and_torch_winners_get_their_triton_backends(tmp_path):
    ort = write_repository(tmp_path, "cpu-model", [_winner("cpu.x86_64.epyc", None, 4, 0, 2, "onnxruntime")],
                           INPUTS, OUTPUTS, _fetch)
    config = _config(tmp_path / "cpu-model" / "config.pbtxt")
    assert config.platform == "onnxruntime_onnx" and config.instance_group[0].kind == 2  # KIND_CPU
    assert config.default_model_filename.endswith(".onnx") and ort["backend"] == "onnxruntime"
    write_repository(tmp_path, "torch-model", [_winner("gpu.nvidia-h100", "9.0", 8, 100, 1, "torch")], INPUTS,
                     OUTPUTS, _fetch, {"model.py": b"# python backend"})
    config = _config(tmp_path / "torch-model" / "config.pbtxt")
    assert config.backend == "python" and config.parameters["farm_artifact"].string_value.endswith(".cache")
    assert (tmp_path / "torch-model" / "1" / "model.py").exists()


def test_a_model_without_a_batch_axis_has_max_batch_0_and_full_dims(tmp_path):
    fixed = [{"name": "x", "dtype": "float16", "dims": [1, 64]}]
    write_repository(tmp_path, "fixed", [_winner("gpu.a", "8.0", 1, 0, 1)], fixed, OUTPUTS, _fetch)
    config = _config(tmp_path / "fixed" / "config.pbtxt")
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert list(config.input[0].dims) == [1, 64] and list(config.output[0].dims) == [-1, -1, -1]


def test_refusals(tmp_path):
    with pytest.raises(UserError, match="different backends"):
        write_repository(tmp_path, "m", [_winner("gpu.a", "8.0", 1, 0, 1), _winner("cpu.b", None, 1, 0, 1,
                                                                                    "onnxruntime")],
                         INPUTS, OUTPUTS, _fetch)
    with pytest.raises(UserError, match="no data type"):
        write_repository(tmp_path, "m", [_winner("gpu.a", "8.0", 1, 0, 1)],
                         [{"name": "x", "dtype": "onnx:99", "dims": [1]}], OUTPUTS, _fetch)
    assert not (tmp_path / "m").exists()  # nothing written when a config cannot be made
    with pytest.raises(UserError, match="does not parse"):
        parse('name: "x"\nmax_batch_size: "eight"\n')


def test_the_torch_python_backend_model_is_valid_python():
    from farm.cli.export_cmd import _TORCH_MODEL_PY

    text = _TORCH_MODEL_PY.read_text()  # a template file of the package (farm/ itself never imports torch)
    compile(text, "model.py", "exec")
    assert "class TritonPythonModel" in text and "load_cache_artifacts" in text


def test_model_directory_is_named_after_the_model_files_stem():
    from farm.triton import model_name

    assert model_name("cls.onnx") == "cls" and model_name("cnn.pt2") == "cnn"
    assert model_name("my model.v2.onnx") == "my_model_v2"  # no dots or spaces in a Triton model name
    assert model_name("yolo.onnx", "p 640") == "yolo-p_640"
    assert model_name(".onnx") == "onnx" and model_name("...") == "model"


def test_outputs_keep_their_declared_dims(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from farm.cli.export_cmd import _outputs

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["probs"]), helper.make_node("Identity", ["x"], ["raw"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 2]),
         helper.make_tensor_value_info("raw", TensorProto.FLOAT, None)])
    onnx.save(helper.make_model(graph), tmp_path / "m.onnx")
    outputs = _outputs(tmp_path / "m.onnx")
    assert [o["dims"] for o in outputs] == [[-1, 2], []]
    inputs = [{"name": "x", "dtype": "float32", "dims": ["batch", 2]}]
    write_repository(tmp_path, "m", [_winner("gpu.a", "8.0", 4, 0, 1)], inputs, outputs, _fetch)
    config = _config(tmp_path / "m" / "config.pbtxt")
    assert [list(o.dims) for o in config.output] == [[2], [-1]]  # batch dropped; no declared shape -> [-1]
    fixed = [{"name": "x", "dtype": "float32", "dims": [1, 2]}]  # no batch axis: dims kept whole
    write_repository(tmp_path, "f", [_winner("gpu.a", "8.0", 1, 0, 1)], fixed, outputs, _fetch)
    assert [list(o.dims) for o in _config(tmp_path / "f" / "config.pbtxt").output] == [[-1, 2], [-1]]
