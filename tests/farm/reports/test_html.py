import re

from click.testing import CliRunner

from browser import render
from farm.cli.commands import cli
from seeding import SWEEP


def _marks(dom: str, plot: str) -> list[dict]:
    """data-job/x/y of every mark inside the plots of one kind."""
    found = []
    for svg in re.findall(rf'<svg[^>]*data-plot="{plot}".*?</svg>', dom, re.S):
        for attrs in re.findall(r'class="mark" ([^>]*)>', svg):
            found.append(dict(re.findall(r'data-(\w+)="([^"]*)"', attrs)))
    return found


def test_html_report_renders_plots_and_figures(known, tmp_path):
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", SWEEP, "--format", "html", "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0
    text = out.read_text()
    # self-contained: no links to anything but the SVG namespace
    assert re.findall(r"https?://[^\"' ]+", text.replace('xmlns="http://www.w3.org/2000/svg"', "")) == []
    dom, shot = render(out.as_uri(), tmp_path, "report")
    assert shot.stat().st_size > 20_000  # a real picture, not a blank page
    # latency vs batch: the H100 fp16 series has batch 1 at 1 ms and batch 8 at 4 ms
    latency = {(m["job"], m["x"], m["y"]) for m in _marks(dom, "latency-vs-batch")}
    assert {("j-fp16-b1", "1", "1"), ("j-fp16-b8", "8", "4"), ("j-cpu-int8", "1", "10")} <= latency
    pareto = {m["job"]: (m["x"], m["y"]) for m in _marks(dom, "pareto")}
    assert pareto["j-fp16-b8"] == ("4", "2000") and pareto["j-cpu-fp32"] == ("20", "50")
    assert {m["job"]: m["x"] for m in _marks(dom, "build-time")}["j-int8-b1"] == "90"
    assert {m["job"] for m in _marks(dom, "accuracy-vs-speed")} >= {"j-int8-b1", "j-fp16-b1"}
    # best table: the winner and its tie with the interval figures
    best = re.search(r'<table class="best">.*?</table>', dom, re.S).group(0)
    rows = re.findall(r'<tr data-job="([^"]+)">(.*?)</tr>', best, re.S)
    assert [job for job, _ in rows] == ["j-cpu-int8", "j-bf16-b1", "j-fp16-b1"]
    cells = dict(re.findall(r'data-field="(\w+)">([^<]*)<', rows[1][1]))
    assert (cells["role"], cells["latency_p50_ms"], cells["latency_p50_ci_low_ms"], cells["latency_p99_ms"]) == \
        ("winner", "1.002", "0.998", "1.100")
    compare = re.search(r'<table class="compare">.*?</table>', dom, re.S).group(0)
    assert re.search(r'data-job="j-int8-b1">.*?data-field="speedup">4\.000<.*?FAIL', compare, re.S)
