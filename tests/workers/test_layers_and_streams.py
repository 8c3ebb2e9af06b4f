"""The per-layer table and the multi-stream aggregate, from measured numbers."""

from __future__ import annotations

import pytest

from workers.timing.layers import layer_table
from workers.timing.cuda import aggregate


def test_layer_table_sorts_by_median_and_gives_shares():
    table = layer_table({"conv1": [1.0, 3.0, 2.0], "relu": [0.5, 0.5, 9.0], "fc": [1.0, 1.0, 1.0]},
                        {"conv1": {"type": "Convolution", "precision": "Half"}}, source="test", iterations=3)
    assert [r["name"] for r in table["layers"]] == ["conv1", "fc", "relu"]
    assert table["total_median_ms"] == pytest.approx(3.5)
    assert table["layers"][0]["share"] == pytest.approx(2.0 / 3.5)
    assert table["layers"][0]["type"] == "Convolution" and table["layers"][2]["median_ms"] == 0.5


def test_streams_aggregate_counts_every_lane():
    result = aggregate([[1.0] * 100, [2.0] * 50], wall_ms=100.0, batch_size=4)
    assert result["aggregate_throughput"] == pytest.approx(150 * 4 * 10)
    assert [s["p50_ms"] for s in result["per_stream"]] == [1.0, 2.0]


def test_torch_profile_rows_split_launches_into_iterations():
    """Real torch.profiler events (CPU ops here; the GPU path keeps the CUDA ones)."""
    torch = pytest.importorskip("torch")
    from torch.profiler import ProfilerActivity, profile

    from workers.backends.torch.profile import per_iteration_times

    a = torch.randn(64, 64)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            torch.relu(a @ a) @ a  # two matmuls and one relu per iteration
    events = [(e.name, float(e.time_range.start), float(e.time_range.end - e.time_range.start))
              for e in prof.events() if e.name in ("aten::mm", "aten::relu")]
    table = per_iteration_times(events, 5)
    assert set(table) == {"aten::mm", "aten::relu"}
    assert all(len(times) == 5 and all(t > 0 for t in times) for times in table.values())
    total_mm = sum(d for n, _, d in events if n == "aten::mm") / 1000.0
    assert sum(table["aten::mm"]) == pytest.approx(total_mm)
    assert per_iteration_times([("once", 0.0, 300.0)], 3)["once"] == pytest.approx([0.1, 0.1, 0.1])
