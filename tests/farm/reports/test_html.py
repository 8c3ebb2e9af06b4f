import json
import re

from click.testing import CliRunner

from browser import render
from farm.cli.commands import cli
from seeding import CPU, H100, SWEEP


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
    assert [job for job, _ in rows] == ["j-cpu-int8", "j-fp16-b1", "j-bf16-b1"]
    cells = dict(re.findall(r'data-field="(\w+)">([^<]*)<', rows[2][1]))
    assert (cells["role"], cells["latency_p50_ms"], cells["latency_p50_ci_low_ms"], cells["latency_p99_ms"]) == \
        ("tied", "1.002", "0.998", "1.100")
    compare = re.search(r'<table class="compare">.*?</table>', dom, re.S).group(0)
    assert re.search(r'data-job="j-int8-b1">.*?data-field="speedup">4\.000<.*?FAIL', compare, re.S)


def _svgs(dom: str, plot: str, device: str | None = None) -> list[str]:
    figures = re.findall(r'<figure class="chart" data-device="([^"]*)">(.*?)</figure>', dom, re.S)
    return [body for dev, body in figures if f'data-plot="{plot}"' in body and (device is None or dev == device)]


def test_plots_read_without_hovering(known, tmp_path):
    out = tmp_path / "report.html"
    CliRunner().invoke(cli, ["report", SWEEP, "--format", "html", "-o", str(out)], catch_exceptions=False)
    rows = {r["job_id"]: r for r in json.loads(CliRunner().invoke(cli, ["report", SWEEP, "--format", "json"]).stdout)}
    dom, shot = render(out.as_uri(), tmp_path, "plots")
    assert shot.stat().st_size > 50_000
    # one series per (backend, precision, profile), in the legend and on the chart
    latency = _svgs(dom, "latency-vs-batch", H100)[0]
    series = set(re.findall(r'<g class="series" data-series="([^"]+)"', latency))
    assert series == {"tensorrt fp32 default", "tensorrt fp16 default", "tensorrt bf16 default",
                      "tensorrt int8 default"}
    assert set(re.findall(r'class="legend"[^>]*>([^<]+)<', latency)) == series
    fp16 = re.search(r'<g class="series" data-series="tensorrt fp16 default">(.*?)</g>', latency, re.S).group(1)
    assert re.findall(r'data-job="([^"]+)" data-x', fp16) == ["j-fp16-b1", "j-fp16-b8"]  # one line b1 -> b8
    # every line labelled at its end, without hover
    assert set(re.findall(r'class="label"[^>]*>([^<]+)<', latency)) == series
    # scatter: every point numbered next to it, the key spells the numbers out
    pareto_svg = _svgs(dom, "pareto", H100)[0]
    marks = dict(re.findall(r'class="mark" data-job="([^"]+)"', pareto_svg) and
                 re.findall(r'<text class="label" data-job="([^"]+)"[^>]*>(\d+)<', pareto_svg))
    key = dict((job, number) for number, job in re.findall(r'<li value="(\d+)" data-job="([^"]+)"', pareto_svg))
    assert marks == key and set(marks) == {"j-fp32-b1", "j-fp16-b1", "j-bf16-b1", "j-int8-b1", "j-fp16-b8"}
    assert re.search(rf'<li value="{key["j-fp16-b8"]}"[^>]*><b>\d+</b> tensorrt fp16 b8 default', pareto_svg)
    # Pareto front: drawn and listed, only over gate-passing configurations
    front = re.search(r'class="front" data-jobs="([^"]+)"', pareto_svg).group(1).split()
    assert front == ["j-fp16-b1", "j-fp16-b8"]  # int8 (0.5 ms, 2000/s) would dominate but fails the gate
    assert all(rows[j]["accuracy_pass"] is not False for j in front)
    listed = re.search(r'<table class="pareto-front">.*?</table>', dom, re.S).group(0)
    assert re.findall(r'<tr data-job="([^"]+)"', listed) == ["j-cpu-int8", "j-fp16-b1", "j-fp16-b8"]
    # failed-gate points are drawn differently
    assert re.search(r'data-job="j-int8-b1"[^>]*data-gate="fail"[^>]*fill="#fff"', pareto_svg)
    assert 'class="failed-gate"' in pareto_svg and 'data-gate="fail"' not in fp16
    # relative error spans 1e-3..0.5 (>10x): a log axis; a one-value axis has one tick
    accuracy = _svgs(dom, "accuracy-vs-speed", H100)[0]
    assert "relative L2 error vs reference (log scale)" in accuracy
    cpu_latency = _svgs(dom, "latency-vs-batch", CPU)[0]
    assert re.findall(r'class="tick-x"[^>]*>([^<]+)<', cpu_latency) == ["1"]


def test_summary_sentence_matches_the_database(known, tmp_path):
    out = tmp_path / "report.html"
    CliRunner().invoke(cli, ["report", SWEEP, "--format", "html", "-o", str(out)], catch_exceptions=False)
    dom, _ = render(out.as_uri(), tmp_path, "summary")
    rows = {r["job_id"]: r for r in json.loads(CliRunner().invoke(cli, ["report", SWEEP, "--format", "json"]).stdout)}
    best = json.loads(CliRunner().invoke(cli, ["best", "--sweep", SWEEP, "--format", "json"]).stdout)
    summary = re.search(r'<section class="summary">.*?</section>', dom, re.S).group(0)
    assert summary.index("On cpu") < dom.index("<h2>Plots</h2>")  # the summary comes first
    sentences = dict(re.findall(r'<p class="verdict" data-device-class="([^"]+)"[^>]*>(.*?)</p>', summary, re.S))
    g = lambda v: f"{v:.4g}"  # noqa: E731
    for winner in (r for r in best if r["role"] == "winner"):
        text, row = sentences[winner["device_class"]], rows[winner["job_id"]]
        assert (f"p50 {g(row['latency_p50_ms'])} ms (95 % CI {g(row['latency_p50_ci_low_ms'])}-"
                f"{g(row['latency_p50_ci_high_ms'])})") in text
        assert f"{g(row['throughput'])} samples/s (95 % CI {g(row['throughput_ci_low'])}-" in text
        assert f"--device {winner['device_class']}" in text
        for tied in winner["tied_with"]:
            assert f"p50 {g(rows[tied]['latency_p50_ms'])} ms" in text.split("statistically tied with it")[1]
    # H100: fp16 b1 wins (the best p50; bf16 is tied with it), fp32 b1 is the baseline: 1000/500 and 2/1
    h100 = sentences[H100]
    assert h100.startswith("On gpu.nvidia-h100, tensorrt fp16 b1 default wins")
    assert "2x the throughput and 2x lower p50 latency" in h100


def test_cross_device_page_shows_cost(known, tmp_path):
    out = tmp_path / "cross.html"
    CliRunner().invoke(cli, ["report", SWEEP, "--format", "html", "--view", "cross-device", "--price",
                             f"{H100}=3.6", "--price", f"{CPU}=0.36", "-o", str(out)], catch_exceptions=False)
    dom, shot = render(out.as_uri(), tmp_path, "cross")
    assert shot.stat().st_size > 20_000
    assert "cost per 1M inferences" in dom and 'data-plot="cost-per-million"' in dom
    bars = dict(re.findall(r'data-plot="cost-per-million".*?</svg>', dom, re.S)[0] and
                re.findall(r'class="mark" data-job="([^"]+)" data-x="([^"]+)"',
                           re.findall(r'data-plot="cost-per-million".*?</svg>', dom, re.S)[0]))
    assert bars["j-fp16-b1"] == "1" and bars["j-cpu-fp32"] == "2"  # $0.36/h at 50/s = $2 per million


def test_pareto_front_per_workload_and_gate():
    import pandas as pd

    from farm.reports import plots, svg

    rows = [  # (job, profile, p50, throughput, gate)
        ("a1", "p64", 1.0, 700.0, True), ("a2", "p64", 2.0, 800.0, True), ("a3", "p64", 5.0, 720.0, True),
        ("a4", "p64", 0.5, 2000.0, False),  # would dominate everything, fails the gate
        ("b1", "p128", 3.7, 228.0, True), ("b2", "p128", 8.0, 212.0, True),  # a one-point front
    ]
    frame = pd.DataFrame([{"job_id": j, "backend": "onnxruntime", "precision": "fp32", "batch_size": 1, "profile": p,
                           "latency_p50_ms": l, "throughput": t, "accuracy_pass": g} for j, p, l, t, g in rows])
    front = plots.pareto(frame)
    assert {p: list(g["job_id"]) for p, g in front.groupby("profile")} == {"p64": ["a1", "a2"], "p128": ["b1"]}
    chart = plots.device_figures("cpu.x", frame.assign(build_s=1.0, rel_l2_error=0.0), plots.styles(frame))[1]
    assert re.findall(r'class="front" data-jobs="([^"]+)"', chart) == ["b1", "a1 a2"]
    assert sorted(re.findall(r'class="front-point" data-job="([^"]+)"', chart)) == ["a1", "a2", "b1"]
    # the two profiles of one precision share hue and marker but not shade
    assert svg.style_for("onnxruntime", "fp32", 0).color != svg.style_for("onnxruntime", "fp32", 1).color
