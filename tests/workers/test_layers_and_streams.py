"""The per-layer table and the multi-stream aggregate, from measured numbers."""

from __future__ import annotations

import pytest

from workers.timing.layers import layer_table
from workers.timing.streams import aggregate


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
