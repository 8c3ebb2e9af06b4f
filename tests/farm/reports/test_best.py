import json
from datetime import datetime

import pytest
from click.testing import CliRunner

from farm.cli.commands import cli
from farm.db import Job, Measurement, Sweep, session_scope
from farm.errors import NotFoundError
from farm.reports import Constraints, find_best, load_frame
from farm.reports.best import eligible, select_best
from seeding import CPU, H100, SWEEP


def _summary(best):
    return [(r["device_class"], r["role"], r["job_id"], r["tied_with"]) for r in best.to_dict("records")]


def _cli_json(*args):
    result = CliRunner().invoke(cli, ["best", *args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_known_winner_and_ties(known):
    # fp16 leads on p50 (1.000) and wins; bf16 (1.002) overlaps it, so it is tied (its lower p99 does
    # not make it the winner: the objective's own figure decides). int8 is fastest but fails the
    # accuracy gate; fp32 (2.0) is outside the tie window.
    assert _summary(find_best(sweep_id=SWEEP)) == [
        (CPU, "winner", "j-cpu-int8", []),
        (H100, "winner", "j-fp16-b1", ["j-bf16-b1"]),
        (H100, "tied", "j-bf16-b1", ["j-fp16-b1"]),
    ]


def test_sweep_and_model_scope_agree(known):
    by_sweep = find_best(sweep_id=SWEEP)
    by_model = find_best(model="known.onnx")
    assert _summary(by_sweep) == _summary(by_model)


@pytest.mark.parametrize("constraints, expected", [
    (dict(objective="throughput"), [(CPU, "winner", "j-cpu-int8", []), (H100, "winner", "j-fp16-b8", [])]),
    (dict(max_latency_ms=1.2), [(H100, "winner", "j-bf16-b1", [])]),  # p99 <= 1.2: fp16 (1.30) and CPU out
    (dict(max_latency_ms=1.2, device="h100"), [(H100, "winner", "j-bf16-b1", [])]),
    (dict(max_latency_ms=1.2, latency_stat="p50", device="H100 80GB"),
     [(H100, "winner", "j-fp16-b1", ["j-bf16-b1"]), (H100, "tied", "j-bf16-b1", ["j-fp16-b1"])]),
    (dict(min_throughput=1500), [(H100, "winner", "j-fp16-b8", [])]),
    (dict(max_memory_mb=600),
     [(H100, "winner", "j-fp16-b1", ["j-bf16-b1"]), (H100, "tied", "j-bf16-b1", ["j-fp16-b1"])]),
])
def test_constraints(known, constraints, expected):
    for scope in (dict(sweep_id=SWEEP), dict(model="known.onnx")):
        assert _summary(find_best(**scope, constraints=Constraints(**constraints))) == expected


def test_cli_json_carries_intervals_and_ties(known):
    rows = _cli_json("--sweep", SWEEP, "--device", "h100")
    assert [(r["job_id"], r["role"], r["tied_with"], r["objective"]) for r in rows] == [
        ("j-fp16-b1", "winner", ["j-bf16-b1"], "latency"), ("j-bf16-b1", "tied", ["j-fp16-b1"], "latency")]
    assert rows[1]["latency_p50_ci_low_ms"] == pytest.approx(0.998)
    assert rows[1]["latency_p50_ci_high_ms"] == pytest.approx(1.0056)
    assert rows[1]["latency_p50_ms"] == pytest.approx(1.002)
    assert rows[0]["objective_value"] == pytest.approx(1.0) and rows[0]["objective_unit"] == "ms/request"


def test_cli_table_and_errors(known):
    result = CliRunner().invoke(cli, ["best", "--sweep", SWEEP, "--max-latency-ms", "0.1"])
    assert isinstance(result.exception, NotFoundError)
    out = CliRunner().invoke(cli, ["best", "known.onnx", "--max-latency-ms", "1.2", "--latency-stat", "p99"]).output
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["device", "role", "job", "backend"]
    assert lines[2].split()[:3] == [H100, "winner", "j-bf16-b1"]


def test_newest_rerun_supersedes(known):
    # A forced re-run (same key) of fp16 in a newer sweep measured it slower: the old, fast one is stale.
    with session_scope() as session:
        session.add(Sweep(id="sweep-new", name="rerun", model_id=1, spec={}, created_at=datetime(2026, 1, 3)))
        session.add(Job(id="j-fp16-rerun", sweep_id="sweep-new", seq=0, key="key-j-fp16-b1", backend="tensorrt",
                        backend_version="10.0", precision="fp16", batch_size=1, profile="default", device_class=H100,
                        config={}, status="done", attempts=1))
        session.flush()
        samples = [3.0] * 11
        session.add(Measurement(job_id="j-fp16-rerun", attempt=1, samples_ms=samples, count=11, mean_ms=3.0,
                                p50_ms=3.0, p99_ms=3.0, throughput=333.3, accuracy_pass=True, memory_mb=500.0))
    best = find_best(model="known.onnx", constraints=Constraints(device="h100"))
    assert _summary(best) == [(H100, "winner", "j-bf16-b1", [])]
    assert _summary(select_best(load_frame(model="known.onnx"), Constraints(device="h100"))) == _summary(best)


def test_host_bound_never_wins_silently(known):
    # fp16 b1 leads H100 (1.000 ms) but is flagged host_bound: bf16 (1.002) wins, and fp16 is listed as
    # kept from winning, with the reason; --allow-host-bound ranks it again.
    with session_scope() as session:
        session.query(Measurement).filter_by(job_id="j-fp16-b1").update({"flags": ["host_bound"]})
    for scope in (dict(sweep_id=SWEEP), dict(model="known.onnx")):
        best = find_best(**scope, constraints=Constraints(device="h100"))
        assert _summary(best) == [(H100, "winner", "j-bf16-b1", [])]
        assert [(r["job_id"], r["would_be"]) for r in best.attrs["excluded"]] == [("j-fp16-b1", "winner")]
        assert "host_bound" in best.attrs["excluded"][0]["reason"]
        allowed = find_best(**scope, constraints=Constraints(device="h100", allow_host_bound=True))
        assert _summary(allowed)[0] == (H100, "winner", "j-fp16-b1", ["j-bf16-b1"])
        assert allowed.attrs.get("excluded", []) == []
    result = CliRunner().invoke(cli, ["best", "known.onnx", "--device", "h100", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [r["job_id"] for r in json.loads(result.stdout)] == ["j-bf16-b1"]
    assert result.stderr.startswith("not ranked: j-fp16-b1 (gpu.nvidia-h100, tensorrt fp16 batch 1, would be winner)")
    only = CliRunner().invoke(cli, ["best", "--sweep", SWEEP, "--device", "h100", "--max-latency-ms", "1.001",
                                    "--latency-stat", "p50"])
    assert isinstance(only.exception, NotFoundError)
    assert "(1 flagged host_bound were not ranked)" in str(only.exception)


def test_report_summary_names_the_host_bound_configuration_it_left_out(known):
    from farm.reports.summary import summary_sentences

    with session_scope() as session:
        session.query(Measurement).filter_by(job_id="j-fp16-b1").update({"flags": ["host_bound"]})
    h100 = next(s for s in summary_sentences(SWEEP) if s.startswith(f"On {H100},"))
    assert h100.startswith(f"On {H100}, tensorrt bf16 b1 default wins")
    assert h100.endswith("Not ranked, flagged host_bound (the figure is the host's launch rate, not the GPU's): "
                         "j-fp16-b1 (tensorrt fp16 batch 1, would be winner).")


def test_a_build_knob_variant_is_its_own_configuration(known):
    # The same backend, precision and batch built with another knob (a search's knob axis): another job key.
    # It is slower; it must neither supersede the fast one nor vanish from the eligible configurations.
    with session_scope() as session:
        session.add(Job(id="j-fp16-knob", sweep_id=SWEEP, seq=99, key="key-j-fp16-b1-knob", backend="tensorrt",
                        backend_version="10.0", precision="fp16", batch_size=1, profile="default", device_class=H100,
                        config={"build": {"tensorrt": {"builder_optimization_level": 1}}}, status="done",
                        attempts=1))
        session.flush()
        session.add(Measurement(job_id="j-fp16-knob", attempt=1, samples_ms=[3.0] * 11, count=11, mean_ms=3.0,
                                p50_ms=3.0, p99_ms=3.0, throughput=333.3, accuracy_pass=True, memory_mb=500.0))
    constraints = Constraints(device="h100")
    assert _summary(find_best(sweep_id=SWEEP, constraints=constraints)) == [
        (H100, "winner", "j-fp16-b1", ["j-bf16-b1"]), (H100, "tied", "j-bf16-b1", ["j-fp16-b1"])]
    assert _summary(find_best(model="known.onnx", constraints=constraints)) == _summary(
        find_best(sweep_id=SWEEP, constraints=constraints))
    kept = eligible(load_frame(sweep_id=SWEEP), constraints)["job_id"]
    assert {"j-fp16-b1", "j-fp16-knob"} <= set(kept)
