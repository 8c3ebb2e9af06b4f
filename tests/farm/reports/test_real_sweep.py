"""On a real ONNX Runtime sweep of a real pretrained model (PP-OCRv4 det):
two profiles x two precisions x three batch sizes, ``farm best`` gives one
winner per profile (workload) and agrees with an independent recomputation
from ``farm report --format json``; configurations whose accuracy was not
measured never win unless allowed."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from farm.cli.commands import cli

MODEL = Path(__file__).parents[3] / "examples" / "models" / "ppocr_det.onnx"
pytestmark = pytest.mark.slow
PROFILES = ["s64:x=1x3x64x64/2x3x64x64/4x3x64x64", "s96:x=1x3x96x96/2x3x96x96/4x3x96x96"]
QUICK = ["--warmup-ms", "20", "--duration-ms", "120", "--iterations", "10"]


def _recompute(rows: list[dict]) -> dict:
    """The documented rule (docs/fields.md, "farm best"), written
    independently of farm/reports/best.py: per (device class, workload),
    eligible = done, measured, accuracy pass or reference; the lowest p50
    wins; tied = within 25 % with overlapping p50 intervals."""
    result = {}
    for group in sorted({(r["device_class"], r["workload"]) for r in rows}):
        ok = [r for r in rows if (r["device_class"], r["workload"]) == group and r["status"] == "done"
              and r["latency_p50_ms"] is not None and r["accuracy_status"] in ("pass", "reference")]
        if not ok:
            continue
        lead = min(ok, key=lambda r: (r["latency_p50_ms"], r["latency_p99_ms"], r["job_id"]))
        tied = [r for r in ok if r is not lead and r["latency_p50_ms"] <= lead["latency_p50_ms"] * 1.25
                and r["latency_p50_ci_low_ms"] <= lead["latency_p50_ci_high_ms"]
                and lead["latency_p50_ci_low_ms"] <= r["latency_p50_ci_high_ms"]]
        result[group] = (lead["job_id"], sorted(r["job_id"] for r in tied))
    return result


def _run(runner, *args):
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_best_per_profile_agrees_with_report(farm_home):
    if not MODEL.exists():
        pytest.skip(f"{MODEL} missing")
    runner = CliRunner()
    profiles = [a for p in PROFILES for a in ("--profile", p)]
    run = _run(runner, "run", "--model", str(MODEL), "--backend", "onnxruntime", "--precision", "fp32",
               "--precision", "int8", "--batch", "1", "--batch", "2", "--batch", "4", *profiles, *QUICK,
               "--format", "json")
    sweep = json.loads(run.stdout)[0]["sweep_id"]
    report = json.loads(_run(runner, "report", sweep, "--format", "json").stdout)
    assert len(report) == 12 and all(r["status"] == "done" for r in report)
    assert {r["accuracy_status"] for r in report if r["precision"] == "fp32"} == {"reference"}
    # No data: int8 was calibrated and checked on synthetic inputs only, never a pass (issue 22).
    assert all(r["accuracy_status"] == "unchecked" and r["accuracy_inputs"].startswith("synthetic")
               for r in report if r["precision"] == "int8")
    workloads = {r["profile"]: r["workload"] for r in report}
    assert len(set(workloads.values())) == 2 and len({r["workload"] for r in report}) == 2
    best = json.loads(_run(runner, "best", "--sweep", sweep, "--format", "json").stdout)
    winners = [r for r in best if r["role"] == "winner"]
    assert sorted(r["profile"] for r in winners) == ["s64", "s96"]  # one winner per profile
    by_id = {r["job_id"]: r for r in report}
    for row in best:  # nothing is compared across workloads
        assert {by_id[j]["workload"] for j in row["tied_with"]} <= {row["workload"]}
    got = {(r["device_class"], r["workload"]): (r["job_id"], sorted(r["tied_with"])) for r in winners}
    assert got == _recompute(report)
    one = json.loads(_run(runner, "best", "--sweep", sweep, "--profile", "s96", "--format", "json").stdout)
    assert {r["profile"] for r in one} == {"s96"} and [r["job_id"] for r in one if r["role"] == "winner"] == \
        [r["job_id"] for r in winners if r["profile"] == "s96"]


def test_unmeasured_accuracy_never_wins_unless_allowed(farm_home, tmp_path):
    if not MODEL.exists():
        pytest.skip(f"{MODEL} missing")
    spec = {"name": "unchecked", "model": str(MODEL), "backends": ["onnxruntime"], "precisions": ["fp32"],
            "batch_sizes": [1], "profiles": [{"name": "s64", "inputs": {"x": {"min": [1, 3, 64, 64],
                                                                               "opt": [1, 3, 64, 64],
                                                                               "max": [1, 3, 64, 64]}}}],
            "measure": {"warmup_ms": 10, "duration_ms": 60, "iterations": 5}, "accuracy": {"enabled": False}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    runner = CliRunner()
    sweep = json.loads(_run(runner, "run", str(tmp_path / "spec.yaml"), "--format", "json").stdout)[0]["sweep_id"]
    (row,) = json.loads(_run(runner, "report", sweep, "--format", "json").stdout)
    assert (row["status"], row["accuracy_status"], row["rel_l2_error"]) == ("done", "unchecked", None)
    refused = runner.invoke(cli, ["best", "--sweep", sweep])
    assert refused.exit_code == 1 and "no finished configuration meets the constraints" in str(refused.exception)
    allowed = json.loads(_run(runner, "best", "--sweep", sweep, "--allow-unchecked", "--format", "json").stdout)
    assert [(r["job_id"], r["role"]) for r in allowed] == [(row["job_id"], "winner")]
    # An error bound is not met by an error that was never measured.
    bounded = runner.invoke(cli, ["best", "--sweep", sweep, "--allow-unchecked", "--max-rel-error", "0.5"])
    assert bounded.exit_code == 1
