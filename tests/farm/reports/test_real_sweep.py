"""On a real (small) ONNX Runtime sweep, ``farm best`` agrees with an
independent recomputation from ``farm report --format json``."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from farm.cli.commands import cli

MODEL = Path(__file__).parents[3] / "examples" / "models" / "ppocr_det.onnx"
pytestmark = pytest.mark.slow


def _recompute(rows: list[dict]) -> dict:
    """The documented rule, written independently of farm/reports/best.py."""
    result = {}
    for device in sorted({r["device_class"] for r in rows}):
        ok = [r for r in rows if r["device_class"] == device and r["status"] == "done"
              and r["latency_p50_ms"] is not None and r["accuracy_pass"] is not False]
        lead = min(ok, key=lambda r: r["latency_p50_ms"])
        tied = [r for r in ok if r["latency_p50_ms"] <= lead["latency_p50_ms"] * 1.25
                and r["latency_p50_ci_low_ms"] <= lead["latency_p50_ci_high_ms"]
                and lead["latency_p50_ci_low_ms"] <= r["latency_p50_ci_high_ms"]]
        big = float("inf")
        winner = min(tied, key=lambda r: (r["latency_p99_ms"], r["memory_mb"] or big, r["artifact_size"] or big,
                                          r["build_s"] or big, r["latency_p50_ms"], r["job_id"]))
        result[device] = (winner["job_id"], sorted(r["job_id"] for r in tied if r is not winner))
    return result


def test_best_agrees_with_report(farm_home):
    if not MODEL.exists():
        pytest.skip(f"{MODEL} missing")
    runner = CliRunner()
    run = runner.invoke(cli, ["run", "--model", str(MODEL), "--backend", "onnxruntime", "--precision", "fp32",
                              "--batch", "1", "--batch", "2", "--profile", "s:x=1x3x64x64/2x3x64x64/2x3x64x64",
                              "--warmup-ms", "20", "--duration-ms", "150", "--iterations", "10", "--format", "json"],
                        catch_exceptions=False)
    assert run.exit_code == 0, run.output
    sweep = json.loads(run.stdout)[0]["sweep_id"]
    report = json.loads(runner.invoke(cli, ["report", sweep, "--format", "json"]).stdout)
    assert all(r["status"] == "done" for r in report)
    assert all(r["latency_p50_ci_low_ms"] <= r["latency_p50_ms"] <= r["latency_p50_ci_high_ms"] for r in report)
    best = json.loads(runner.invoke(cli, ["best", "--sweep", sweep, "--format", "json"]).stdout)
    got = {r["device_class"]: (r["job_id"], sorted(r["tied_with"])) for r in best if r["role"] == "winner"}
    assert got == _recompute(report)
