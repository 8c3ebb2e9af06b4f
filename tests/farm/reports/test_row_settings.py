"""Rows that differ only in serving settings, streams or build knobs are
named apart: the report's ``streams`` and ``settings`` fields, the table's
settings column, the summary sentence and the progress lines."""

from __future__ import annotations

import json
from datetime import datetime

from click.testing import CliRunner

from farm.cli import cli
from farm.cli.progress import describe_job
from farm.db import Device, Job, Measurement, Model, Sweep, session_scope
from farm.reports.rows import job_rows
from farm.reports.summary import summary_sentences
from farm.stats import summarize
from seeding import CPU, _samples

SWEEP = "sweep-settings"
SERVED = {"run": ["offline"], "instances": 1}
# (job id, config, p50 ms): equal in backend, precision, batch and profile
JOBS = [("j-d0", {"serving": {**SERVED, "queue_delay_us": 0}}, 10.0),
        ("j-d1000", {"serving": {**SERVED, "queue_delay_us": 1000}}, 10.01),
        ("j-s2", {"measure": {"streams": 2}, "build": {"opt": 1}}, 30.0),
        ("j-opt2", {"build": {"opt": 2}, "serving": {**SERVED, "queue_delay_us": 0, "instances": 2}}, 40.0)]


def _seed(status: str = "done") -> None:
    with session_scope() as session:
        model = Model(sha256="cd" * 32, name="cls.onnx", path="/models/cls.onnx", size_bytes=10, inputs=[])
        session.add(model)
        session.flush()
        session.add(Sweep(id=SWEEP, name="settings", model_id=model.id, spec={}, created_at=datetime(2026, 1, 2)))
        cpu = Device(uuid="CPU-1", kind="cpu", name="Test CPU", device_class=CPU, host="h1")
        session.add(cpu)
        session.flush()
        for seq, (job_id, config, p50) in enumerate(JOBS):
            session.add(Job(id=job_id, sweep_id=SWEEP, seq=seq, key=f"key-{job_id}", backend="onnxruntime",
                            backend_version="1.0", precision="fp32", batch_size=1, profile="p48",
                            device_class=CPU, config=config, status=status, attempts=1, worker="w1",
                            device_id=cpu.id, started_at=datetime(2026, 1, 2, 1)))
            if status == "done":
                samples = _samples(p50, 0.5)
                stats = summarize(samples, 1)
                session.add(Measurement(
                    job_id=job_id, attempt=1, device_id=cpu.id, samples_ms=samples, count=stats["count"],
                    mean_ms=stats["mean_ms"], p50_ms=stats["p50_ms"], p90_ms=stats["p90_ms"], p95_ms=stats["p95_ms"],
                    p99_ms=stats["p99_ms"], stdev_ms=stats["stdev_ms"], cv=stats["cv"],
                    throughput=stats["throughput"], accuracy_pass=True, flags=[], created_at=datetime(2026, 1, 2, 1)))


def test_report_rows_carry_streams_and_the_settings_that_tell_them_apart(farm_home):
    _seed()
    rows = {r["job_id"]: r for r in job_rows(sweep_id=SWEEP)}
    assert {k: (r["streams"], r["settings"]) for k, r in rows.items()} == {
        "j-d0": (1, "d0us x1"), "j-d1000": (1, "d1000us x1"), "j-s2": (2, "s2 opt=1"), "j-opt2": (1, "d0us x2 opt=2")}
    report = json.loads(CliRunner().invoke(cli, ["report", SWEEP, "--format", "json"]).stdout)
    assert [(r["job_id"], r["streams"], r["settings"]) for r in report] == [
        (j, rows[j]["streams"], rows[j]["settings"]) for j, _, _ in JOBS]


def test_table_and_summary_name_each_configuration(farm_home):
    _seed()
    result = CliRunner().invoke(cli, ["report", SWEEP], catch_exceptions=False)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "settings" in lines[0]
    for job_id, settings in (("j-d0", "d0us x1"), ("j-d1000", "d1000us x1"), ("j-s2", "s2 opt=1")):
        assert settings in next(line for line in lines if line.startswith(job_id)), job_id
    [sentence] = summary_sentences(SWEEP)
    assert "onnxruntime fp32 b1 p48 d0us x1 wins" in sentence
    assert "statistically tied with it" in sentence and "onnxruntime fp32 b1 p48 d1000us x1 (p50" in sentence


def test_a_table_without_settings_has_no_settings_column(known):
    assert "settings" not in CliRunner().invoke(cli, ["report", "sweep-known"]).stdout.splitlines()[0]


def test_progress_lines_name_the_settings(farm_home):
    from farm.service import running_jobs

    _seed(status="running")
    lines = [describe_job(j) for j in running_jobs(SWEEP)]
    assert lines == ["onnxruntime fp32 b1 p48 d0us x1 on w1", "onnxruntime fp32 b1 p48 d1000us x1 on w1",
                     "onnxruntime fp32 b1 p48 s2 opt=1 on w1", "onnxruntime fp32 b1 p48 d0us x2 opt=2 on w1"]


def test_speedup_and_cross_device_views_carry_the_settings(farm_home):
    _seed()
    for view in ("speedup", "cross-device"):
        rows = json.loads(CliRunner().invoke(cli, ["report", SWEEP, "--view", view, "--format", "json"]).stdout)
        assert {r["job_id"]: r["settings"] for r in rows}["j-d1000"] == "d1000us x1", view
        table = CliRunner().invoke(cli, ["report", SWEEP, "--view", view]).stdout
        assert "d1000us x1" in table, view
