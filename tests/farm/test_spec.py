from __future__ import annotations

import json
import textwrap

import jsonschema
import pytest

from farm.errors import SpecError
from farm.spec import MeasureConfig, load_spec, parse_profile_flag, parse_spec
from farm.spec_schema import SPEC_SCHEMA

ISSUE_EXAMPLE = textwrap.dedent("""\
    name: det-sweep
    model: models/det.onnx
    backends: [onnxruntime]
    precisions: [fp32, int8]
    batch_sizes: [1, 8]
    profiles:
      - name: p640
        inputs:
          images: {min: [1, 3, 320, 320], opt: [8, 3, 640, 640], max: [8, 3, 640, 640]}
    devices: any
    measure: {warmup_ms: 200, duration_ms: 3000, iterations: 10}
    accuracy: {reference: onnxruntime, max_rel_error: 0.01}
""")


def write(tmp_path, text: str):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_issue_example_is_accepted_as_written(tmp_path, models_dir):
    spec = load_spec(write(tmp_path, ISSUE_EXAMPLE))
    assert spec.name == "det-sweep"
    assert spec.model == tmp_path / "models" / "det.onnx"
    assert spec.precisions == ("fp32", "int8")
    assert spec.batch_sizes == (1, 8)
    assert spec.profiles[0].inputs["images"].opt == (8, 3, 640, 640)
    assert spec.devices == ("any",)
    assert spec.measure == MeasureConfig(warmup_ms=200, duration_ms=3000, iterations=10)
    assert spec.accuracy.max_rel_error == 0.01


def test_defaults_follow_trtexec(tmp_path):
    spec = parse_spec({"model": "m.onnx"})
    assert (spec.measure.warmup_ms, spec.measure.duration_ms, spec.measure.iterations) == (200, 3000, 10)
    assert spec.backends == ("onnxruntime",) and spec.precisions == ("fp32",)
    assert spec.batch_sizes == ()  # not given: the model's own batch (tests/farm/test_expand.py)


@pytest.mark.parametrize("raw, message", [
    ({"model": "m.onnx", "colour": "red"},
     "unknown key 'colour' in spec (allowed: name, model, data, backends, precisions, batch_sizes, profiles, "
     "devices, measure, accuracy, calibration, build, search, scenarios, timeouts, streams)"),
    ({"model": "m.onnx", "precisions": ["fp32", "int4"]},
     "spec field 'precisions[1]': 'int4' is not allowed (allowed: fp32, fp16, bf16, int8, fp8, model)"),
    ({"model": "m.onnx", "batch_sizes": [1, 0]}, "spec field 'batch_sizes[1]': batch size must be > 0 (got 0)"),
    ({"model": "m.onnx", "batch_sizes": [-4]}, "spec field 'batch_sizes[0]': batch size must be > 0 (got -4)"),
    ({"model": "m.onnx", "measure": {"warmup": 5}},
     "unknown key 'warmup' in spec field 'measure' (allowed: warmup_ms, duration_ms, iterations, cuda_graph, "
     "end_to_end, l2_flush, sync, max_cv, max_remeasure, streams, layer_profile)"),
    ({"model": "m.onnx", "profiles": [{"name": "p", "inputs": {"x": {"min": [1, 3], "opt": [2, 3], "max": [1, 3]}}}]},
     "spec field 'profiles[0].inputs.x': dimension 0 needs min <= opt <= max (got 1, 2, 1)"),
    ({"model": "m.onnx", "profiles": [{"name": "p", "inputs": {"x": {"min": [1, 3], "opt": [1, 3, 4], "max": [1, 3]}}}]},
     "spec field 'profiles[0].inputs.x': min, opt and max must have the same rank"),
    ({"model": "m.onnx", "profiles": [{"name": "p", "inputs": {"x": {"min": [0, 3], "opt": [1, 3], "max": [1, 3]}}}]},
     "spec field 'profiles[0].inputs.x': dimension 0 must be > 0 (got 0)"),
    ({}, "spec is missing the required key 'model'"),
    ({"model": "m.onnx", "profiles": [{"name": "p"}]}, "spec field 'profiles[0]' is missing the required key 'inputs'"),
    ("just text", "a sweep spec must be a mapping of keys to values"),
])
def test_invalid_specs_name_the_field(raw, message):
    with pytest.raises(SpecError) as error:
        parse_spec(raw)
    assert str(error.value) == message


def test_unknown_backend_is_checked_against_installed_plugins(tmp_path, models_dir):
    from farm.service import validate

    spec = parse_spec({"model": str(models_dir / "det.onnx"), "backends": ["tvm"]})
    with pytest.raises(SpecError, match=r"unknown backend 'tvm' \(allowed: .*onnxruntime"):
        validate(spec)


def test_yaml_errors_are_user_errors(tmp_path):
    with pytest.raises(SpecError, match="is not valid YAML at line 2"):
        load_spec(write(tmp_path, "model: a.onnx\n  bad: [\n"))
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "missing.yaml")


def test_profile_flag_parses_like_the_yaml_form():
    assert parse_profile_flag("p640:images=1x3x320x320/8x3x640x640/8x3x640x640") == {
        "name": "p640",
        "inputs": {"images": {"min": [1, 3, 320, 320], "opt": [8, 3, 640, 640], "max": [8, 3, 640, 640]}},
    }
    with pytest.raises(SpecError, match="each input needs input=MIN/OPT/MAX"):
        parse_profile_flag("p:images=1x3")


def test_published_schema_is_a_valid_json_schema_and_accepts_the_example():
    import yaml

    jsonschema.Draft202012Validator.check_schema(SPEC_SCHEMA)
    jsonschema.validate(yaml.safe_load(ISSUE_EXAMPLE), SPEC_SCHEMA)
    assert json.loads(json.dumps(SPEC_SCHEMA)) == SPEC_SCHEMA
