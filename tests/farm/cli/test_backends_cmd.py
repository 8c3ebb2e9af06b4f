"""`farm backends`: exact output for the backends this checkout installs."""

from __future__ import annotations

from importlib import metadata

from click.testing import CliRunner

from farm.backends import missing_requirements
from farm.cli import cli


def test_backends_lists_each_plugin_and_the_tensorrt_verification_note():
    result = CliRunner().invoke(cli, ["backends"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # (tensorrt-stubs installs a "tensorrt" folder of .pyi files: that is not the library)
    trt = "missing tensorrt" if missing_requirements("tensorrt") else "ready"
    index = lines.index(f"tensorrt: precisions fp32, fp16, bf16, int8, fp8, model; jobs on gpu; here: {trt}")
    assert lines[index + 1] == (
        "  note: the full-TensorRT runtime has not yet been run on a GPU by the project: its build path is "
        "exercised through TensorRT-RTX on CPU and type-checked against tensorrt-stubs (docs/tensorrt.md)")
    ort = metadata.version("onnxruntime")
    assert f"onnxruntime: precisions fp32, int8, model; jobs on cpu; here: ready ({ort})" in lines


def test_a_plugin_that_fails_to_import_is_listed_with_its_error(monkeypatch):
    monkeypatch.setenv("FARM_EXTRA_BACKENDS", "broken=tests.no_such_plugin_module:Config")
    result = CliRunner().invoke(cli, ["backends"])
    assert result.exit_code == 0, result.output
    assert "broken: failed to load: ModuleNotFoundError: No module named 'tests.no_such_plugin_module'" \
        in result.output.splitlines()
