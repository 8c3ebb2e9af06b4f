"""`farm fetch` refuses with the reasons `farm best` gives (the one
eligibility object's `excluded` rows) and the command that admits them."""

from click.testing import CliRunner

from farm.cli.commands import cli
from farm.db import Measurement, session_scope
from farm.errors import NotFoundError


def test_fetch_names_why_every_candidate_was_kept_out_and_the_flag(known, tmp_path):
    with session_scope() as session:
        session.query(Measurement).update({"flags": ["host_contended"]})
    out = tmp_path / "best.onnx"
    refused = CliRunner().invoke(cli, ["fetch", "known.onnx", "--device", "h100", "-o", str(out)])
    assert isinstance(refused.exception, NotFoundError), refused.output
    message = str(refused.exception)
    assert message.startswith("no finished result for h100 meets the constraints (")
    assert "not ranked, flagged host_contended: measured while the host's CPUs were oversubscribed" in message
    assert message.endswith(f"to fetch one anyway: farm fetch known.onnx --device h100 --allow-host-bound -o {out}")
    assert not out.exists()
    best = CliRunner().invoke(cli, ["best", "known.onnx", "--device", "h100"])
    assert "flagged host_contended were not ranked" in str(best.exception)


def test_allow_host_bound_help_says_it_admits_host_contended_rows():
    for command in ("best", "fetch"):
        help_text = " ".join(CliRunner().invoke(cli, [command, "--help"]).output.split())
        assert "flagged host_bound (the figure is the host's launch rate) or host_contended" in help_text
