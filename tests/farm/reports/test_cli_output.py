"""Exact output of the commands and formats added for issue 16, over the
seeded database (known samples, so every figure is known)."""

import csv
import io
import json

import pytest
from click.testing import CliRunner

from farm.cli.commands import cli
from farm.cli.output import render_table
from seeding import H100, SWEEP, seed_rerun

COMPARE_TABLE = """\
backend       prec   batch   profile   device A          device B          p50 A ms   p50 B ms     B/A   CI low   CI high   change %   thru B/A   verdict
───────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────
onnxruntime   fp32       1   default   cpu.x86_64.test   cpu.x86_64.test     20.000     20.000   1.000    0.993     1.007          0      1.000   tied
onnxruntime   int8       1   default   cpu.x86_64.test   cpu.x86_64.test     10.000      8.000   0.800    0.789     0.810    -20.000      1.250   faster
tensorrt      bf16       1   default   gpu.nvidia-h100   gpu.nvidia-h100      1.002      1.002   1.000    0.994     1.005          0      1.000   tied
tensorrt      fp16       1   default   gpu.nvidia-h100   gpu.nvidia-h100      1.000      1.500   1.500    1.492     1.508     50.000      0.667   slower
tensorrt      fp16       8   default   gpu.nvidia-h100   -                    4.000          -       -        -         -          -          -   only in A
tensorrt      fp32       1   default   gpu.nvidia-h100   gpu.nvidia-h100      2.000      2.000   1.000    0.993     1.007          0      1.000   tied
tensorrt      fp8        1   default   gpu.nvidia-h100   -                        -          -       -        -         -          -          -   only in A
tensorrt      int8       1   default   gpu.nvidia-h100   gpu.nvidia-h100      0.500      0.500   1.000    0.994     1.005          0      1.000   tied
"""


def _invoke(*args, code: int = 0):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def pair(known):
    # fp16 b1 50 % slower, cpu int8 20 % faster, fp16 b8 missing in B.
    return seed_rerun("sweep-b", {"j-fp16-b1": 1.5, "j-cpu-int8": 0.8}, drop=("j-fp16-b8",))


def test_compare_table_exact(pair):
    result = _invoke("compare", SWEEP, "sweep-b")
    # The summary line follows the table on the same stream.
    assert result.stdout == COMPARE_TABLE + (
        "sweep-b against sweep-known: 1 faster, 2 only in A, 1 slower, 4 tied; B/A is the p50 latency ratio (> 1: "
        "B slower) with its 95 % bootstrap interval; a change must clear 10 %\n")
    assert result.stderr == ""


def test_compare_fails_on_regression_beyond_pct(pair):
    result = _invoke("compare", SWEEP, "sweep-b", "--fail-on-regression", "20", code=1)
    assert result.stderr.splitlines()[-1] == ("regression: 1 configurations significantly slower by more than 20 %: "
                                              "tensorrt fp16 b1 default: +50.0 % (CI +49.2..+50.8 %)")
    _invoke("compare", SWEEP, "sweep-b", "--fail-on-regression", "60")  # 50 % is within 60 %: exit 0


def test_compare_json_csv_and_html(pair, tmp_path):
    rows = json.loads(_invoke("compare", SWEEP, "sweep-b", "--format", "json").stdout)
    verdicts = {(r["precision"], r["batch_size"], r["device_class_a"]): r["verdict"] for r in rows}
    assert verdicts[("fp16", 1, H100)] == "slower" and verdicts[("fp16", 8, H100)] == "only in A"
    slower = next(r for r in rows if r["verdict"] == "slower")
    assert slower["ratio"] == pytest.approx(1.5) and slower["ratio_ci_low"] < 1.5 < slower["ratio_ci_high"]
    assert isinstance(slower["batch_size"], int)
    text = _invoke("compare", SWEEP, "sweep-b", "--format", "csv").stdout
    assert next(csv.DictReader(io.StringIO(text)))["batch_size"] == "1"
    out = tmp_path / "cmp.html"
    _invoke("compare", SWEEP, "sweep-b", "--format", "html", "-o", str(out), "--fail-on-regression", "60")
    page = out.read_text()
    assert 'data-plot="sweep-ratio"' in page and 'data-verdict="slower"' in page and "regression gate (60 %)" in page


def test_compare_same_sweep_is_an_error(known):
    result = CliRunner().invoke(cli, ["compare", SWEEP, SWEEP])
    assert result.exit_code != 0 and "two different sweeps" in str(result.exception or result.output)


def test_cancel_of_a_finished_sweep_changes_nothing(known):
    before = json.loads(_invoke("sweep", "status", SWEEP, "--format", "json").stdout)
    assert _invoke("sweep", "cancel", SWEEP).stdout == (
        "sweep sweep-known is already finished: nothing to cancel, nothing changed\n")
    assert json.loads(_invoke("sweep", "cancel", SWEEP, "--format", "json").stdout) == {
        "sweep_id": SWEEP, "changed": False, "cancelled": 0, "state": "finished", "running": 0}
    assert json.loads(_invoke("sweep", "status", SWEEP, "--format", "json").stdout) == before
    assert before["state"] == "finished"


def test_integers_stay_integers(known, tmp_path):
    text = _invoke("report", SWEEP, "--format", "csv").stdout
    row = next(r for r in csv.DictReader(io.StringIO(text)) if r["job_id"] == "j-fp16-b1")
    assert (row["samples"], row["artifact_size"], row["batch_size"]) == ("101", "1001", "1")
    failed = next(r for r in csv.DictReader(io.StringIO(text)) if r["job_id"] == "j-failed")
    assert failed["samples"] == "" and failed["artifact_size"] == ""
    rows = json.loads(_invoke("report", SWEEP, "--format", "json").stdout)
    assert {type(r["samples"]) for r in rows} == {int, type(None)}
    pq = pytest.importorskip("pyarrow.parquet")
    _invoke("report", SWEEP, "--format", "parquet", "-o", str(tmp_path / "r.parquet"))
    schema = pq.read_table(tmp_path / "r.parquet").schema
    assert str(schema.field("samples").type) == "int64" and str(schema.field("artifact_size").type) == "int64"


def test_fetch_json(known, tmp_path):
    target = tmp_path / "engine.bin"
    out = json.loads(_invoke("fetch", "--sweep", SWEEP, "--device", H100, "-o", str(target), "--format",
                             "json").stdout)
    assert out["path"] == str(target) and out["job_id"] == "j-fp16-b1" and out["batch_size"] == 1
    assert target.read_bytes() == b"engine of j-fp16-b1"


def test_report_views_are_different_pages_and_price_is_used(known, tmp_path):
    pages = {}
    for view in ("jobs", "compare", "cross-device"):
        out = tmp_path / f"{view}.html"
        extra = ["--price", f"{H100}=3.6"] if view == "cross-device" else []
        _invoke("report", SWEEP, "--format", "html", "--view", view, "-o", str(out), *extra)
        pages[view] = out.read_text()
    assert len(set(pages.values())) == 3
    assert 'data-field="cost_per_million">1.000<' in pages["cross-device"]  # $3.6/h at 1000/s
    assert 'data-field="throughput_gain">' in pages["compare"] and 'data-plot="throughput-gain"' in pages["compare"]
    result = CliRunner().invoke(cli, ["report", SWEEP, "--format", "html", "--price", f"{H100}=3.6"])
    assert result.exit_code == 1 and "cross-device only" in str(result.exception)


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_tables_wrap_on_a_terminal_and_colour_only_there(monkeypatch):
    note = "TensorRT-RTX cannot build for compute capability 8.0, 8.6, 8.9 (needs 12.0 or newer)"
    rows = [{"job_id": "j1", "accuracy_pass": False, "note": note}]
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.delenv("NO_COLOR", raising=False)
    tty = render_table(["job", "acc", "note"], ["job_id", "accuracy_pass", "note"], rows, _Tty())
    assert "\x1b[" in tty and "FAIL" in tty
    plain_words = " ".join(line.split("│")[-1] for line in tty.splitlines())
    assert all(word in plain_words for word in note.split())  # wrapped, every word kept
    assert max(len(line) for line in _strip(tty).splitlines()) <= 40
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in render_table(["job", "acc", "note"], ["job_id", "accuracy_pass", "note"], rows, _Tty())
    piped = render_table(["job", "acc", "note"], ["job_id", "accuracy_pass", "note"], rows, io.StringIO())
    assert piped.splitlines()[2] == f"j1    FAIL   {note}"


def test_the_acc_cell_names_the_deciding_task_metric(monkeypatch):
    from farm.cli.output import table

    rows = [{"job_id": "j1", "status": "done", "precision": "int8", "rel_l2_error": 0.527,
             "accuracy_status": "fail", "accuracy_metric": "iou 0.748"},
            {"job_id": "j2", "status": "done", "precision": "fp32", "accuracy_status": "reference"}]
    piped = table(rows, stream=io.StringIO())
    lines = piped.splitlines()
    assert lines[0].split()[-4:] == ["rel", "L2", "acc", "note"]  # beside rel L2, in the acc column
    assert lines[2].split()[-4:] == ["0.527", "FAIL", "(iou", "0.748)"] and lines[3].split()[-1] == "reference"
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    assert "\x1b[1;31mFAIL (iou 0.748)" in table(rows, stream=_Tty())  # coloured as a failure


def _strip(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_list_and_devices_tables_exact(pair):
    assert _invoke("sweep", "list").stdout == """\
sweep         name    model        state      finished   jobs               created
───────────────────────────────────────────────────────────────────────────────────────────────
sweep-known   known   known.onnx   finished        8/8   7 done, 1 failed   2026-01-02T00:00:00
sweep-b       rerun   known.onnx   finished        6/6   6 done             2026-01-03T00:00:00
"""
    assert _invoke("devices").stdout == """\
device class      name                    kind   cc   host   uuid    versions
─────────────────────────────────────────────────────────────────────────────
cpu.x86_64.test   Test CPU                cpu     -   h1     CPU-1          -
gpu.nvidia-h100   NVIDIA H100 80GB HBM3   gpu     -   h1     GPU-1          -
"""
    assert _invoke("workers").stdout == "no live workers\n"
    assert json.loads(_invoke("workers", "--format", "json").stdout) == []


def test_submit_resume_cancel_json(farm_home, models_dir):
    submit = json.loads(_invoke("sweep", "submit", "--model", str(models_dir / "det.onnx"), "--backend",
                                "onnxruntime", "--precision", "fp32", "--batch", "1", "--batch", "2", "--profile",
                                "p:images=1x3x32x32/2x3x32x32/2x3x32x32", "--format", "json").stdout)
    sweep = submit.pop("sweep_id")
    assert submit == {"jobs": 2, "queued": 2, "reused": 0, "unsupported": 0, "skipped": [], "search": None,
                      "conversion": None, "notes": []}
    resumed = json.loads(_invoke("sweep", "resume", sweep, "--format", "json").stdout)
    assert resumed["sweep_id"] == sweep and set(resumed) == {"sweep_id", "enqueued", "requeued", "quarantined",
                                                             "resent"}
    assert _invoke("sweep", "cancel", sweep).stdout == f"cancelled 2 jobs of sweep {sweep}\n"
    assert json.loads(_invoke("sweep", "cancel", sweep, "--format", "json").stdout) == {
        "sweep_id": sweep, "changed": False, "cancelled": 0, "state": "cancelled", "running": 0}


def test_report_table_prints_the_summary_under_it_on_the_same_stream(known):
    result = _invoke("report", SWEEP)
    assert result.stdout.splitlines()[0].split()[:3] == ["job", "status", "backend"]
    assert result.stderr == ""
    # Artifact file names say what the artifact is: an ONNX model, a TensorRT engine.
    summary = (
        'On cpu.x86_64.test, onnxruntime int8 b1 default wins (objective: p50 latency): p50 10 ms (95 % CI 9.'
        '9-10.09), 100 samples/s (95 % CI 99.43-100.6). Against the baseline onnxruntime fp32 b1 default: 2x '
        'the throughput and 2x lower p50 latency. Engine to fetch: farm fetch --sweep sweep-known --device cp'
        'u.x86_64.test -o onnxruntime-int8-b1.onnx\n'
        'On gpu.nvidia-h100, tensorrt fp16 b1 default wins (objective: p50 latency): p50 1 ms (95 % CI 0.996-'
        '1.004), 1000 samples/s (95 % CI 997.7-1002); statistically tied with it (within 25 % of its p50 late'
        'ncy and with overlapping 95 % intervals; the winner has the best point estimate): tensorrt bf16 b1 d'
        'efault (p50 1.002 ms, 95 % CI 0.998-1.006). Against the baseline tensorrt fp32 b1 default: 2x the th'
        'roughput and 2x lower p50 latency. Engine to fetch: farm fetch --sweep sweep-known --device gpu.nvid'
        'ia-h100 -o tensorrt-fp16-b1.engine\n'
    )
    assert result.stdout.endswith(summary) and len(result.stdout.splitlines()) > 2  # the table, then the summary
