"""Models as users have them (farm/sources.py, converters/): each source
format built from code here, converted to ONNX by its own exporter, and the
converted model checked against the source framework's own outputs on
inputs the conversion never saw (batch 3; the programs were exported with 2)."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from farm.sources import converter_identity, model_identity, open_model, source_digest

pytestmark = pytest.mark.slow  # each conversion is a subprocess importing torch or TensorFlow (seconds)


def _onnx_feeds(session, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The test's arrays under the converted model's input names (a frozen
    graph's inputs are named ``images:0``)."""
    names = [i.name for i in session.get_inputs()]
    return {name: feeds[name.split(":")[0]] for name in names}


@pytest.mark.parametrize("kind", ["torch-cnn", "torch-encoder", "keras-cnn", "keras-encoder", "tf-saved-model",
                                  "tf-frozen"])
def test_converted_model_computes_what_its_source_computes(kind, build_model, conversion_home):
    built = build_model(kind)
    model = open_model(built.path)
    source = model.source
    assert source["format"] == built.format and source["name"] == built.path.name
    assert source["parity"]["pass"] and source["opset"] >= 13
    assert source["parity"]["synthetic"] == (not kind.startswith("torch-"))  # .pt2 carries example inputs
    # Jobs are keyed on the source's hash plus the converter's name and versions.
    assert source["sha256"] == source_digest(built.path)
    assert model.sha256 == model_identity(source["sha256"], converter_identity(built.format))
    assert all(v for v in source["versions"].values())
    # The batch stays dynamic: the converted model runs batch 3, exported at 2.
    assert not isinstance(model.inputs[0].dims[0], int)
    session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    got = session.run(None, _onnx_feeds(session, built.inputs()))
    expected = built.expected()
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)


def test_a_model_is_converted_once(build_model, conversion_home):
    built = build_model("torch-cnn")
    first = open_model(built.path)
    record = first.path.parent / "record.json"
    written = record.stat().st_mtime_ns
    again = open_model(built.path)
    assert again.sha256 == first.sha256 and again.path == first.path
    assert record.stat().st_mtime_ns == written  # the converter did not run again
    assert json.loads(record.read_text())["onnx_sha256"]


def test_parity_is_checked_on_the_specs_data(build_model, conversion_home):
    """A model converted without data was checked on its example inputs; a
    spec with data gets the same conversion checked on that data, once."""
    built = build_model("torch-cnn")
    first = open_model(built.path)
    assert first.source["parity"]["inputs"] == "example inputs saved in the program"
    with_data = open_model(built.path, data=built.folder / "inputs.npz")
    assert with_data.sha256 == first.sha256 and with_data.path == first.path  # the same conversion
    parity = with_data.source["parity"]
    assert parity["inputs"] == "data" and not parity["synthetic"] and parity["pass"]
    assert parity["shapes"] == {"images": [2, 3, 32, 32]}  # the data's first rows (the example's batch)
    [kept] = first.path.parent.glob("parity-*.json")
    written = kept.stat().st_mtime_ns
    assert open_model(built.path, data=built.folder / "inputs.npz").source["parity"] == parity
    assert kept.stat().st_mtime_ns == written  # checked once per data file
