"""trtexec 11's measurement defaults for TensorRT-family engines; every knob
the spec sets wins."""

from __future__ import annotations

from farm.spec import MeasureConfig
from workers.backends.tensorrt_family.measure_settings import end_to_end_pass, trtexec_defaults


def test_unset_knobs_take_trtexec_11_defaults():
    timed, notes = trtexec_defaults(MeasureConfig(), True, None)
    assert (timed.cuda_graph, timed.sync, timed.end_to_end) == (True, "spin", False)
    assert notes == {"defaults": "trtexec 11", "defaulted": ["cuda_graph", "sync", "end_to_end"],
                     "end_to_end_pass": True}
    e2e = end_to_end_pass(timed)
    assert e2e.end_to_end is True and e2e.duration_ms == 1000.0 and e2e.iterations == timed.iterations


def test_the_spec_wins_and_a_data_dependent_engine_runs_without_a_graph():
    timed, notes = trtexec_defaults(MeasureConfig(sync="blocking", end_to_end=True, cuda_graph=False), False, None)
    assert (timed.cuda_graph, timed.sync, timed.end_to_end) == (False, "blocking", True)
    assert notes["defaulted"] == [] and notes["end_to_end_pass"] is False
    timed, notes = trtexec_defaults(MeasureConfig(), False, "outputs sel have data-dependent shapes")
    assert timed.cuda_graph is False and notes["cuda_graph_off_because"].startswith("outputs sel")
