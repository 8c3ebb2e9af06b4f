"""Label placement at scale (issue 24, finding 13): the grid-indexed placer
places exactly as the all-pairs one did, and a crowded scatter labels at
most MAX_LABELS points (its Pareto front first); timing is in
benchmarks/report_html_scale.py, not here."""

from __future__ import annotations

import random
import re

from farm.reports import svg


class _AllPairs(svg._Labels):
    """The placer before the grid: every box scored against every box."""

    def _overlap_area(self, rect) -> float:
        return sum(svg._area(rect, box) for box in self.boxes)


def test_the_grid_places_every_label_where_all_pairs_did():
    rng = random.Random(3)
    marks = [(rng.uniform(60, 460), rng.uniform(30, 300)) for _ in range(300)]
    box = (svg.PAD_L, svg.PAD_T, svg.W - svg.PAD_R, svg.H - svg.PAD_B)
    fast, slow = svg._Labels(marks, box), _AllPairs(marks, box)
    for x, y in marks:
        text = str(rng.randint(1, 2000))
        assert fast.place(x, y, text) == slow.place(x, y, text)


def test_a_crowded_scatter_labels_its_front_first_and_at_most_max_labels():
    rng = random.Random(5)
    style = svg.style_for("tensorrt", "fp16")
    points = [svg.Point(rng.uniform(1, 50), rng.uniform(10, 900), f"j{i}", f"{i}", True, i) for i in range(500)]
    front = sorted(points, key=lambda p: p.x)[:10]
    chart = svg.chart("pareto", "t", "x", "y", [svg.Series("s", style, points)], fronts=[front])
    labelled = re.findall(r'<text class="label" data-job="(j\d+)"', chart)
    assert len(labelled) == svg.MAX_LABELS
    assert {p.job for p in front} <= set(labelled)
    assert f"numbers on {svg.MAX_LABELS} of 500 points" in chart
    small = svg.chart("pareto", "t", "x", "y", [svg.Series("s", style, points[:20])])
    assert len(re.findall(r'<text class="label"', small)) == 20  # few points: every one labelled
