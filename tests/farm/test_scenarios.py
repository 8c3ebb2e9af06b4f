"""The spec's ``scenarios`` block, its job axes, and ranking on LoadGen's
results: an INVALID run has no figure and never wins."""

from __future__ import annotations

import pandas as pd
import pytest

from farm.errors import SpecError
from farm.reports.best import Constraints, rank
from farm.reports.rows import REPORT_FIELDS
from farm.reports.serving import add_serving_columns, serving_fields
from farm.scenarios import headline, load_curve
from farm.spec import parse_spec


def _spec(**scenarios):
    return parse_spec({"model": "m.onnx", "scenarios": scenarios})


def test_defaults_and_axes():
    spec = _spec(p99_ms=20, queue_delay_us=[0, 500, 500], instances=[1, 2])
    assert spec.scenarios.run == ("single_stream", "server", "offline")
    configs = spec.scenarios.job_configs()
    assert [(c["queue_delay_us"], c["instances"]) for c in configs] == [(0, 1), (0, 2), (500, 1), (500, 2)]
    assert all(c["p99_ms"] == 20 and c["run"] == ["single_stream", "server", "offline"] for c in configs)


@pytest.mark.parametrize("scenarios, message", [
    ({"run": ["server"]}, "spec field 'scenarios.p99_ms': the server scenario needs a p99 latency bound"),
    ({"run": ["offline"], "min_duration_ms": 500, "max_duration_ms": 100},
     "spec field 'scenarios.max_duration_ms': must be at least min_duration_ms (500)"),
    ({"run": ["offline"], "min_query_count": 500, "max_query_count": 100},
     "spec field 'scenarios.max_query_count': must be at least min_query_count (500)"),
    ({"run": ["batch"]}, "spec field 'scenarios.run[0]': 'batch' is not allowed"),
    ({"queue_delay_us": [-1]}, "spec field 'scenarios.queue_delay_us[0]': -1 is less than the minimum of 0"),
    ({"p99_ms": 0}, "spec field 'scenarios.p99_ms'"),
])
def test_bad_blocks(scenarios, message):
    with pytest.raises(SpecError) as error:
        _spec(**scenarios)
    assert str(error.value).startswith(message)


def _server(*runs):
    """A stored Server result as workers/serving/loadgen_run.py writes it."""
    valid = [r for r in runs if r[1] == "VALID"]
    best = max(valid, key=lambda r: r[0]) if valid else None
    return {"validity": "VALID" if best else "INVALID", "p99_ms": best[2] if best else runs[0][2],
            "best_valid_qps": best[0] if best else None, "p99_bound_ms": 50,
            "runs": [{"target_qps": q, "validity": v, "p99_ms": p} for q, v, p in runs]}


def _serving(server=None, offline=None, single=None):
    scenarios = {}
    if single is not None:
        scenarios["single_stream"] = {"validity": single[0], "p90_ms": single[1]}
    if offline is not None:
        scenarios["offline"] = {"validity": offline[0], "samples_per_s": offline[1]}
    if server is not None:
        scenarios["server"] = server
    return {"scenarios": scenarios, "queue_delay_us": 0, "instances": 1}


def test_invalid_runs_have_no_figure():
    serving = _serving(server=_server((100, "VALID", 20), (400, "INVALID", 90)), offline=("INVALID", 900.0),
                       single=("VALID", 1.5))
    assert headline(serving, "server") == 100
    assert headline(serving, "offline") is None
    fields = serving_fields(serving)
    assert fields["server_qps"] == 100 and fields["server_p99_ms"] == 20 and fields["offline_samples_per_s"] is None
    assert fields["single_stream_p90_ms"] == 1.5
    assert fields["scenarios_validity"] == "single_stream:VALID offline:INVALID server:VALID"
    assert [p["target_qps"] for p in load_curve(serving)] == [100, 400]
    assert serving_fields(_serving(server=_server((400, "INVALID", 90))))["server_qps"] is None


def _frame(servings: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for job_id, serving in servings.items():
        row = dict.fromkeys(REPORT_FIELDS)
        row.update(job_id=job_id, status="done", backend="onnxruntime", precision="fp32", batch_size=1,
                   profile="p", device_class="cpu.x", device="cpu", workload="p:1", latency_p50_ms=1.0,
                   latency_p99_ms=2.0, throughput=1000.0, accuracy_status="reference", flags=[],
                   job_key=job_id)
        row["serving"] = serving
        rows.append(row)
    frame = pd.DataFrame(rows)
    for field in ("server_qps", "server_p99_ms", "offline_samples_per_s", "single_stream_p90_ms"):
        frame[field] = None
    return add_serving_columns(frame)


def test_an_invalid_load_never_wins():
    frame = _frame({
        # the highest offered load of all, but LoadGen said INVALID
        "a": _serving(server=_server((5000, "INVALID", 400), (50, "VALID", 10))),
        "b": _serving(server=_server((300, "VALID", 45), (600, "INVALID", 80))),
        "c": _serving(server=_server((10000, "INVALID", 900))),
    })
    ranked = rank(frame, Constraints(objective="server-qps"))
    assert ranked.iloc[0]["job_id"] == "b" and ranked.iloc[0]["objective_value"] == 300
    assert "c" not in set(ranked["job_id"])
    # a tighter bound: b's 300 QPS ran at p99 45 ms, over 20 ms; a's 50 QPS (10 ms) is the answer
    tight = rank(frame, Constraints(objective="server-qps", p99_ms=20))
    assert list(tight["job_id"]) == ["a"] and tight.iloc[0]["objective_value"] == 50
    assert rank(frame, Constraints(objective="server-qps", p99_ms=5)).empty


def test_lower_is_better_for_stream_scenarios_and_invalid_is_out():
    frame = _frame({"a": _serving(single=("VALID", 3.0)), "b": _serving(single=("VALID", 2.0)),
                    "c": _serving(single=("INVALID", 0.5))})
    ranked = rank(frame, Constraints(objective="single-stream"))
    assert ranked.iloc[0]["job_id"] == "b" and ranked.iloc[0]["objective_unit"] == "ms p90 (SingleStream, valid)"
    assert "c" not in set(ranked["job_id"])


def test_efficiency_ranks_only_measured_energy():
    frame = _frame({"gpu": _serving(), "cpu": _serving()})
    frame["inferences_per_joule"] = [250.0, None]
    ranked = rank(frame, Constraints(objective="efficiency"))
    assert list(ranked["job_id"]) == ["gpu"]


def test_report_section_draws_every_server_run_and_the_bound():
    from farm.reports.html import table
    from farm.reports.serving_section import serving_section

    frame = _frame({"a": _serving(server=_server((100, "VALID", 20), (400, "INVALID", 90))),
                    "b": _serving(server=_server((300, "VALID", 45)))})
    html = serving_section(frame, table)
    assert 'data-series="p99 bound 50 ms"' in html
    assert html.count('data-gate="fail"') == 1 and 'data-x="400" data-y="90"' in html  # the INVALID run, hollow
    assert "LoadGen: INVALID" in html and "the accuracy gate" not in html
    assert serving_section(_frame({"c": None}), table) == ""


def test_host_bound_speaks_of_fixed_batch_timing_not_of_served_figures():
    frame = _frame({"a": _serving(server=_server((300, "VALID", 20))), "b": _serving(server=_server((200, "VALID", 20))),
                    "c": _serving(server=_server((900, "VALID", 20)))})
    frame["flags"] = [["host_bound"], [], ["host_contended"]]
    ranked = rank(frame, Constraints(objective="server-qps"))
    assert ranked.iloc[0]["job_id"] == "a"  # host_bound: its fixed-batch figure is the host's; served QPS stands
    assert "c" not in set(ranked["job_id"])  # a contended host spoils every figure
    assert list(rank(frame, Constraints(objective="latency"))["job_id"]) == ["b"]
