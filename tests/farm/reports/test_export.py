import csv
import io
import json
import sys

import pytest
from click.testing import CliRunner

from farm.cli import main
from farm.cli.commands import cli
from farm.reports import REPORT_FIELDS
from farm.reports.compare import COMPARE_FIELDS, CROSS_FIELDS
from seeding import CPU, H100, SWEEP


def _run(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_json_and_csv_columns_are_the_documented_fields(known, tmp_path):
    rows = json.loads(_run("report", SWEEP, "--format", "json"))
    assert [list(r) for r in rows] == [list(REPORT_FIELDS)] * 8
    by_id = {r["job_id"]: r for r in rows}
    assert by_id["j-fp16-b1"]["latency_p50_ms"] == pytest.approx(1.0)
    assert by_id["j-bf16-b1"]["flags"] == ["throttled"]
    assert by_id["j-failed"]["status"] == "failed" and by_id["j-failed"]["latency_p50_ms"] is None
    _run("report", SWEEP, "--format", "csv", "-o", str(tmp_path / "r.csv"))
    table = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text())))
    assert list(table[0]) == list(REPORT_FIELDS)
    assert {r["job_id"]: r["flags"] for r in table}["j-cpu-int8"] == "unstable"


def test_speedup_view(known):
    rows = json.loads(_run("report", SWEEP, "--view", "speedup", "--format", "json"))
    assert [list(r) for r in rows][:1] == [list(COMPARE_FIELDS)]
    speedup = {r["job_id"]: (r["baseline_job_id"], round(r["speedup"], 3)) for r in rows}
    assert speedup == {
        "j-cpu-int8": ("j-cpu-fp32", 2.0), "j-cpu-fp32": ("j-cpu-fp32", 1.0), "j-int8-b1": ("j-fp32-b1", 4.0),
        "j-fp16-b1": ("j-fp32-b1", 2.0), "j-bf16-b1": ("j-fp32-b1", 1.996), "j-fp32-b1": ("j-fp32-b1", 1.0),
        "j-fp16-b8": ("j-fp32-b1", 0.5)}
    assert [r["device_class"] for r in rows] == [CPU] * 2 + [H100] * 5


def test_cross_device_cost(known):
    rows = json.loads(_run("report", SWEEP, "--view", "cross-device", "--format", "json",
                           "--price", f"{H100}=3.6", "--price", f"{CPU}=0.36"))
    assert list(rows[0]) == list(CROSS_FIELDS)
    cost = {r["job_id"]: round(r["cost_per_million"], 6) for r in rows}
    # $3.6/h at 1000 samples/s = 3.6M samples/h -> $1 per million.
    assert cost["j-fp16-b1"] == pytest.approx(1.0, rel=1e-3)
    assert cost["j-cpu-fp32"] == pytest.approx(0.36 / 3600 / 50 * 1e6, rel=1e-3)


def test_bad_price_is_one_error_line(known, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["farm"])
    with pytest.raises(SystemExit):
        main(["report", SWEEP, "--view", "cross-device", "--price", "gpu.nvidia-h100"])
    assert capsys.readouterr().err.startswith("Error: --price wants DEVICE_CLASS=PRICE_PER_HOUR")
    with pytest.raises(SystemExit):
        main(["report", SWEEP, "--view", "cross-device", "--price", "gpu.nope=1"])
    assert "without results: gpu.nope" in capsys.readouterr().err


def test_parquet(known, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    _run("report", SWEEP, "--format", "parquet", "-o", str(tmp_path / "r.parquet"))
    table = pq.read_table(tmp_path / "r.parquet")
    assert table.column_names == list(REPORT_FIELDS)
    assert sorted(table.column("job_id").to_pylist())[0] == "j-bf16-b1"


def test_parquet_without_pyarrow_is_a_clear_error(known, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(SystemExit):
        main(["report", SWEEP, "--format", "parquet", "-o", str(tmp_path / "r.parquet")])
    assert capsys.readouterr().err.strip() == \
        "Error: parquet export needs pyarrow: pip install 'engine-farm[parquet]'"


def test_old_view_name_still_works_with_one_deprecation_line(known):
    result = CliRunner().invoke(cli, ["report", SWEEP, "--view", "compare", "--format", "json"],
                                catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stderr == "farm: --view compare is deprecated; use --view speedup\n"
    assert json.loads(result.stdout) == json.loads(_run("report", SWEEP, "--view", "speedup", "--format", "json"))
