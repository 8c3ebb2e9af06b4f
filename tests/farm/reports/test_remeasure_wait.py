"""`farm best --remeasure` with no worker running says at once, on stderr,
that its finals are queued and which worker they wait for; the wait stays
bounded and ends in one line."""

import time

from click.testing import CliRunner

import farm.search.finals as finals
from farm.cli.commands import cli
from farm.errors import UserError
from seeding import SWEEP


def test_remeasure_without_a_worker_says_what_it_waits_for_then_gives_up(known, monkeypatch):
    monkeypatch.setattr(finals, "REMEASURE_WAIT_S", 1.0)
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["best", "--sweep", SWEEP, "--remeasure", "--no-tuned"])
    assert time.monotonic() - started < 120  # bounded: never the 1800 s default here
    assert isinstance(result.exception, UserError), result.output
    assert "did not finish within 1 s" in str(result.exception)
    queued = [line for line in result.stderr.splitlines() if line.startswith("finals ")]
    assert queued, result.stderr
    for line in queued:
        assert " candidates) queued; waiting up to 1 s for a worker of class " in line
        assert line.endswith("none is running now: start one with 'farm worker start' on a host with that device")
