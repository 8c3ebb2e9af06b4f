"""The host_bound rule on recorded per-iteration times (no GPU needed)."""

from __future__ import annotations

from workers.timing.host_bound import HOST_SHARE_LIMIT, summarize


def test_graph_replay_shape_is_not_host_bound():
    # 100 iterations of 0.5 ms GPU work, 10 us in the launch call, back to back.
    summary = summarize([0.5] * 100, [0.01] * 100, wall_ms=51.0)
    assert summary["host_bound"] is False
    assert summary["host_share"] == 0.02 and summary["gpu_busy_share"] > 0.95


def test_host_paced_window_is_host_bound():
    # The event window is as long as the host's enqueue: the GPU waited for launches.
    summary = summarize([2.0] * 50, [1.9] * 50, wall_ms=101.0)
    assert summary["host_bound"] is True and summary["host_share"] > HOST_SHARE_LIMIT


def test_gpu_idle_between_iterations_is_host_bound():
    # Short launches, but the host spends 4x the GPU time elsewhere between iterations.
    summary = summarize([0.1] * 100, [0.005] * 100, wall_ms=50.0)
    assert summary["host_bound"] is True and summary["gpu_busy_share"] == 0.2


def test_no_samples_is_not_flagged():
    assert summarize([], [], wall_ms=0.0)["host_bound"] is False
