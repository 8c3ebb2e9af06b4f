"""Every fallback a backend records reaches the job's flags (the worker's
merge, workers/measurement_row.py) and is shown by ``farm report --format json``
and the HTML report; a quantized model carries its own fallbacks, so a
cached prepared model still says what was done."""

import json
import re
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from farm.cli.commands import cli
from farm.db import Measurement, session_scope
from seeding import SWEEP
from tests.onnx_models import make_cnn
from workers.backends.base import BuildResult, TimingResult
from workers.measurement_row import flags as _flags

# Each documented fallback flag (docs/fields.md, "Fallback flags") and who records it.
BUILD_FALLBACKS = {"per_tensor_fallback": "per-channel weights were asked for; ...",
                   "preprocess_skipped": "quantization pre-processing failed (...)",
                   "opset_not_upgraded": "upgrading opset 11 to 13 failed (...)"}
TIMING_FALLBACKS = ["cuda_graph_fallback", "sync_flags_not_applied"]


def test_the_worker_merges_build_fallbacks_into_the_flags():
    built = BuildResult(artifact=Path("x"), build_s=1.0, info={"fallbacks": BUILD_FALLBACKS})
    timing = TimingResult(samples_ms=[1.0], flags=["unstable", *TIMING_FALLBACKS])
    assert _flags(built, timing) == ["unstable", *TIMING_FALLBACKS, *BUILD_FALLBACKS]
    assert _flags(built, None) == list(BUILD_FALLBACKS)


def test_each_fallback_is_in_the_json_report_and_the_html(known, tmp_path):
    built = BuildResult(artifact=Path("x"), build_s=1.0, info={"fallbacks": BUILD_FALLBACKS})
    flags = _flags(built, TimingResult(samples_ms=[1.0], flags=list(TIMING_FALLBACKS)))
    with session_scope() as session:
        row = session.query(Measurement).filter_by(job_id="j-int8-b1").one()
        row.flags, row.build_info = flags, {**(row.build_info or {}), "fallbacks": BUILD_FALLBACKS}
    runner = CliRunner()
    rows = json.loads(runner.invoke(cli, ["report", SWEEP, "--format", "json"], catch_exceptions=False).output)
    assert next(r for r in rows if r["job_id"] == "j-int8-b1")["flags"] == flags
    out = tmp_path / "report.html"
    result = runner.invoke(cli, ["report", SWEEP, "--format", "html", "--view", "speedup", "-o", str(out)],
                           catch_exceptions=False)
    assert result.exit_code == 0
    row_html = re.search(r'<tr data-job="j-int8-b1">.*?</tr>', out.read_text(), re.S).group(0)
    for flag in flags:
        assert flag in row_html


def test_a_quantized_model_records_its_fallbacks(tmp_path):
    from workers.precision.int8 import _record_fallbacks, model_fallbacks, quantize_int8

    model = make_cnn(tmp_path / "cnn.onnx", dynamic_hw=False)
    rng = np.random.default_rng(0)
    feeds = [{"images": rng.uniform(0, 1, (1, 3, 32, 32)).astype(np.float32)} for _ in range(2)]
    quantized = quantize_int8(model, tmp_path / "cnn.int8.onnx", feeds)
    assert model_fallbacks(quantized) == {}  # this model quantizes per channel as asked
    _record_fallbacks(quantized, {"per_tensor_fallback": "why"})
    assert model_fallbacks(quantized) == {"per_tensor_fallback": "why"}  # replaced, not appended
    import onnxruntime as ort

    ort.InferenceSession(str(quantized), providers=["CPUExecutionProvider"])  # still a loadable model
