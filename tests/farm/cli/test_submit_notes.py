"""'farm sweep submit --format json' carries the notes the table form says
on stderr: int8 without 'data:' is calibrated and checked on synthetic
inputs (issue 22), said once, in both forms."""

from __future__ import annotations

import json
import shutil

import yaml
from click.testing import CliRunner

from farm.cli.commands import cli

PROFILE = [{"name": "p", "inputs": {"images": {"min": [1, 3, 32, 32], "opt": [1, 3, 32, 32],
                                               "max": [1, 3, 32, 32]}}}]


def _spec(tmp_path, tiny_cnn, **more) -> str:
    shutil.copy(tiny_cnn, tmp_path / "det.onnx")
    spec = {"name": "notes", "model": "det.onnx", "backends": ["onnxruntime"], "precisions": ["fp32", "int8"],
            "batch_sizes": [1], "devices": "cpu", "profiles": PROFILE, **more}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return "spec.yaml"


def test_json_and_table_say_the_synthetic_note_once(farm_home, tmp_path, tiny_cnn):
    spec = _spec(tmp_path, tiny_cnn)
    runner = CliRunner()
    as_json = runner.invoke(cli, ["sweep", "submit", spec, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    notes = json.loads(as_json.stdout)["notes"]
    assert len(notes) == 1 and "int8 is calibrated and checked on synthetic inputs" in notes[0]
    as_table = runner.invoke(cli, ["sweep", "submit", spec, "--force"])
    assert as_table.exit_code == 0, as_table.output
    assert as_table.stderr.count("note: ") == 1 and notes[0] in as_table.stderr


def test_no_note_without_a_calibrated_precision(farm_home, tmp_path, tiny_cnn):
    spec = _spec(tmp_path, tiny_cnn, precisions=["fp32"])
    result = CliRunner().invoke(cli, ["sweep", "submit", spec, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["notes"] == []
