"""External-data ONNX models (farm/model_bundle.py): one model of graph +
data files, content-addressed as one; a data location outside the model's
folder is refused in one line before any data file is opened."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import onnx
import pytest

from farm.errors import ModelError
from farm.model_bundle import manifest, parse_manifest, put_model
from farm.model_info import read_model
from farm.store.local import LocalStore
from tests.onnx_models import make_cnn

REPO = Path(__file__).resolve().parents[2]


def external_model(folder: Path, source: Path, location: str = "det.onnx.data") -> Path:
    """``source`` saved with every initializer in one side file at ``location``."""
    folder.mkdir(parents=True, exist_ok=True)
    graph = folder / "det.onnx"
    onnx.save(onnx.load(str(source)), str(graph), save_as_external_data=True, all_tensors_to_one_file=True,
              location=location, size_threshold=0)
    return graph


def relocate(graph: Path, location: str) -> None:
    """Point every external tensor of ``graph`` at ``location`` (the graph only is rewritten)."""
    proto = onnx.load(str(graph), load_external_data=False)
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    graph.write_bytes(proto.SerializeToString())


@pytest.fixture
def source(tmp_path) -> Path:
    return make_cnn(tmp_path / "src" / "det.onnx")


def test_graph_and_data_are_one_model(tmp_path, source):
    graph = external_model(tmp_path / "m", source)
    info = read_model(graph)
    [data] = info.data_files
    assert data.location == "det.onnx.data" and data.size == (tmp_path / "m" / "det.onnx.data").stat().st_size
    graph_sha = hashlib.sha256(graph.read_bytes()).hexdigest()
    assert info.sha256 == hashlib.sha256(manifest(graph_sha, info.data_files)).hexdigest() != graph_sha
    assert info.size_bytes == graph.stat().st_size + data.size
    # The same graph with other weights is another model.
    raw = bytearray(data.path.read_bytes())
    raw[0] ^= 0xFF
    data.path.write_bytes(bytes(raw))
    assert read_model(graph).sha256 != info.sha256
    # A one-file model keeps its file's hash.
    assert read_model(source).sha256 == hashlib.sha256(source.read_bytes()).hexdigest()


def test_stored_as_manifest_and_files(tmp_path, source):
    info = read_model(external_model(tmp_path / "m", source))
    store = LocalStore(tmp_path / "store")
    key = put_model(store, info)
    assert key == info.sha256
    body = parse_manifest(store.get_bytes(key))
    assert [d["location"] for d in body["data"]] == ["det.onnx.data"]
    assert store.get_bytes(body["data"][0]["sha256"]) == info.data_files[0].path.read_bytes()
    assert store.get_bytes(body["graph"]) == info.path.read_bytes()


def _fifo(path: Path) -> Path:
    """A FIFO: opening it for reading blocks until a writer comes, so a refusal
    that returns at once proves the file was never opened."""
    os.mkfifo(path)
    return path


def _refused_without_reading(graph: Path) -> str:
    outcome: dict = {}

    def read():
        try:
            read_model(graph)
        except ModelError as exc:
            outcome["error"] = str(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "read_model opened the data file (blocked on the FIFO)"
    return outcome["error"]


def test_absolute_location_is_refused_and_reads_nothing(tmp_path, source):
    outside = _fifo(tmp_path / "outside.data")
    graph = external_model(tmp_path / "m", source)
    relocate(graph, str(outside))
    error = _refused_without_reading(graph)
    assert "external data location" in error and "is an absolute path" in error and "\n" not in error


def test_dotdot_location_is_refused_and_reads_nothing(tmp_path, source):
    _fifo(tmp_path / "outside.data")
    graph = external_model(tmp_path / "m", source)
    relocate(graph, "../outside.data")
    error = _refused_without_reading(graph)
    assert "leads out of the model's folder ('..')" in error and "\n" not in error


def test_link_out_of_the_folder_is_refused_and_reads_nothing(tmp_path, source):
    outside = _fifo(tmp_path / "outside.data")
    graph = external_model(tmp_path / "m", source)
    (tmp_path / "m" / "det.onnx.data").unlink()
    (tmp_path / "m" / "det.onnx.data").symlink_to(outside)
    error = _refused_without_reading(graph)
    assert "is a link leading out of the model's folder" in error


def test_missing_data_file_is_one_line(tmp_path, source):
    graph = external_model(tmp_path / "m", source)
    (tmp_path / "m" / "det.onnx.data").unlink()
    with pytest.raises(ModelError, match="no such data file beside the model"):
        read_model(graph)


@pytest.mark.parametrize("location", ["../x.data", "/etc/passwd", "model.onnx", "C:/x.data"])
def test_a_manifest_naming_a_place_outside_its_folder_is_refused(location):
    raw = json.dumps({"engine-farm-model": 1, "graph": "0" * 64,
                      "data": [{"location": location, "sha256": "1" * 64, "size": 1}]}).encode()
    with pytest.raises(ModelError, match="outside its folder"):
        parse_manifest(raw)


def test_submit_refuses_an_outside_location_in_one_line(tmp_path, source):
    graph = external_model(tmp_path / "m", source)
    relocate(graph, "../../secret.data")
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: ext\nmodel: {graph}\nbackends: [onnxruntime]\ndevices: cpu\n")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FARM_")},
           "FARM_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "farm", "sweep", "submit", str(spec)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and "leads out of the model's folder" in line
    assert not (tmp_path / "home" / "farm.db").exists() or b"ext" not in (tmp_path / "home" / "farm.db").read_bytes()
