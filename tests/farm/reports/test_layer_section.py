"""The best engine's per-layer table in the HTML report (and so the dashboard)."""

from __future__ import annotations

import re

from click.testing import CliRunner
from sqlalchemy import select

from farm.cli.commands import cli
from farm.db import Measurement, session_scope
from seeding import SWEEP

PROFILE = {"artifact_sha256": "cd" * 32, "source": "TensorRT IProfiler", "iterations": 20, "total_median_ms": 0.9,
           "rows": 31, "top": [
               {"name": "conv1 + relu1", "type": "CaskConvolution", "precision": "Half", "tactic": "sm90_xmma",
                "median_ms": 0.6, "share": 0.6667},
               {"name": "gemm <b>", "type": "CaskGemm", "precision": "Half", "tactic": None, "median_ms": 0.3,
                "share": 0.3333}]}


def _report(tmp_path) -> str:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", SWEEP, "--format", "html", "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0
    return out.read_text()


def test_layer_table_of_each_devices_winner(known, tmp_path):
    assert "Per-layer profile" not in _report(tmp_path)  # no job was profiled yet
    with session_scope() as session:
        for job in ("j-bf16-b1", "j-fp16-b1"):  # the H100 winner, and a tied job that must not show
            row = session.scalars(select(Measurement).where(Measurement.job_id == job)).one()
            row.telemetry = {**(row.telemetry or {}), "layer_profile": PROFILE}
    text = _report(tmp_path)
    tables = re.findall(r'<h3>([^<]*)</h3><table class="layers">(.*?)</table>', text, re.S)
    assert [caption for caption, _ in tables] == [
        "gpu.nvidia-h100: job j-fp16-b1 (TensorRT IProfiler, 20 iterations, total 0.900 ms, top 2 of 31)"]
    rows = re.findall(r"<tr>(<td.*?)</tr>", tables[0][1], re.S)
    cells = [re.findall(r"<td[^>]*>([^<]*)</td>", r) for r in rows]
    assert cells == [["conv1 + relu1", "CaskConvolution", "Half", "sm90_xmma", "0.6000", "66.7 %"],
                     ["gemm &lt;b&gt;", "CaskGemm", "Half", "", "0.3000", "33.3 %"]]
