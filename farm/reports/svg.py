"""Inline-SVG charts that read without hovering (no plotting dependency,
no scripts: pages stay self-contained and open offline).

Why not a plotting library: matplotlib's SVG carries no per-point data
(tests and users could not check a mark against the database) and costs a
large dependency for the coordinator; plotly/bokeh pages embed megabytes of
JavaScript and put labels behind hover. These charts are small, exact and
deterministic.

Reading aids: every series has a fixed style (hue = precision, marker =
backend, shade and line dash = profile; ``style_for``) used on every chart and page;
line charts label each line at its end; scatter charts number each point
next to it and list the numbers in a key beside the chart; configurations
that fail the accuracy gate are hollow with a cross; axes turn logarithmic
when the data spans more than 10x. Every mark carries ``data-job``,
``data-x``, ``data-y``, ``data-series`` and ``data-gate`` attributes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 620, 340, 64, 170, 30, 46
PRECISION_COLORS = {"fp32": "#1f5fa8", "tf32": "#4b8bd6", "fp16": "#e07b00", "bf16": "#2a9d3f",
                    "int8": "#c4282d", "fp8": "#7d3fb0", "int4": "#8c564b"}
OTHER_COLORS = ("#17becf", "#bcbd22", "#e377c2", "#555555")
BACKEND_MARKERS = {"onnxruntime": "circle", "tensorrt": "square", "tensorrt-rtx": "triangle", "torch": "diamond"}
OTHER_MARKERS = ("pentagon", "star", "circle")
DASHES = ("", "7 4", "2 3", "9 3 2 3")
CHAR_W = 6.6  # mean glyph width of bold 11 px sans-serif, for label boxes
LOG_RANGE = 10.0  # data spanning more than this factor gets a log axis


@dataclass(frozen=True)
class Style:
    color: str
    marker: str
    dash: str


SHADES = (0.0, 0.45, -0.4, 0.7)  # per profile: the precision's hue, lighter or darker


def _shade(color: str, amount: float) -> str:
    rgb = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    rgb = [round(c + (255 - c) * amount) if amount > 0 else round(c * (1 + amount)) for c in rgb]
    return "#" + "".join(f"{c:02x}" for c in rgb)


def style_for(backend: str, precision: str, profile_index: int = 0) -> Style:
    """The same (backend, precision, profile) looks the same everywhere:
    hue = precision, marker = backend, shade and line dash = profile."""
    color = PRECISION_COLORS.get(precision) or OTHER_COLORS[sum(map(ord, precision)) % len(OTHER_COLORS)]
    marker = BACKEND_MARKERS.get(backend) or OTHER_MARKERS[sum(map(ord, backend)) % len(OTHER_MARKERS)]
    return Style(_shade(color, SHADES[profile_index % len(SHADES)]), marker, DASHES[profile_index % len(DASHES)])


@dataclass
class Point:
    x: float
    y: float
    job: str
    text: str  # what the key / tooltip says about it
    passed: bool = True  # accuracy gate not failed
    number: int | None = None  # its number in the chart's key


@dataclass
class Series:
    name: str
    style: Style
    points: list[Point] = field(default_factory=list)


def _num(value: float) -> str:
    return f"{value:.4g}"


def _nice_step(span: float, count: int) -> float:
    step = 10 ** math.floor(math.log10(span / count))
    for mult in (1, 2, 2.5, 5, 10):
        if span / (step * mult) <= count:
            return step * mult
    return step * 10


class Axis:
    """One axis: linear (from 0 for non-negative data when that costs
    little) or log10 when positive data spans more than LOG_RANGE."""

    def __init__(self, values, lo_px: float, hi_px: float, discrete: bool = False, allow_log: bool = True):
        data = sorted({float(v) for v in values if v is not None and math.isfinite(v)}) or [0.0]
        self.data, self.lo_px, self.hi_px, self.discrete = data, lo_px, hi_px, discrete
        positive = [v for v in data if v > 0]
        self.log = allow_log and len(positive) > 1 and positive[-1] / positive[0] > LOG_RANGE
        if self.log:
            self.floor = positive[0]  # zeros are drawn at the floor, labelled 0
            lo, hi = math.log10(positive[0]), math.log10(positive[-1])
            margin = (hi - lo) * 0.06
            self.lo, self.hi = lo - margin, hi + margin
        else:
            lo, hi = data[0], data[-1]
            if lo == hi:  # one value: centre it; its only tick is the value itself
                half = abs(lo) * 0.5 or 1.0
                lo, hi = lo - half, hi + half
                if data[0] >= 0:
                    lo = max(lo, 0.0)
            elif lo >= 0 and lo < (hi - lo) * 0.6:
                lo = 0.0  # non-negative data starts at zero when that wastes little room
            margin = (hi - lo) * 0.06
            self.lo, self.hi = (lo if lo == 0 else lo - margin), hi + margin

    def __call__(self, value: float) -> float:
        if self.log:
            value = math.log10(max(value, self.floor))
        return self.lo_px + (value - self.lo) / (self.hi - self.lo) * (self.hi_px - self.lo_px)

    def ticks(self) -> list[tuple[float, str]]:
        """(value, label) pairs."""
        if self.discrete or len(self.data) == 1:
            return [(v, _num(v)) for v in self.data]
        if self.log:
            return self._log_ticks()
        step = _nice_step(self.hi - self.lo, 5)
        start = math.ceil(self.lo / step - 1e-9) * step
        values = [start + i * step for i in range(int((self.hi - start) / step + 1e-9) + 1)]
        return [(v, _num(round(v, 12))) for v in values]

    def _log_ticks(self) -> list[tuple[float, str]]:
        lo, hi = math.floor(self.lo), math.ceil(self.hi)
        mults = (1,) if hi - lo > 4 else (1, 2, 5) if hi - lo > 1 else (1, 2, 3, 5, 7)
        ticks = [m * 10.0 ** e for e in range(lo, hi + 1) for m in mults]
        ticks = [t for t in ticks if self.lo <= math.log10(t) <= self.hi]
        out = [(t, _num(t)) for t in ticks]
        if self.data[0] <= 0:
            out.insert(0, (self.floor, "0"))
        return out


def _marker(shape: str, x: float, y: float, color: str, passed: bool, attrs: str, tip: str) -> str:
    fill = color if passed else "#fff"
    common = f'class="mark" {attrs} fill="{fill}" stroke="{color}" stroke-width="{1.2 if passed else 1.8}"'
    r = 4.6
    if shape == "square":
        body = f'<rect {common} x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}">'
        end = "</rect>"
    elif shape in ("triangle", "diamond", "pentagon", "star"):
        pts = _polygon(shape, x, y, r + 1)
        body, end = f'<polygon {common} points="{pts}">', "</polygon>"
    else:
        body, end = f'<circle {common} cx="{x:.1f}" cy="{y:.1f}" r="{r}">', "</circle>"
    cross = "" if passed else (f'<path class="failed-gate" d="M{x - r:.1f},{y - r:.1f}L{x + r:.1f},{y + r:.1f}'
                               f'M{x - r:.1f},{y + r:.1f}L{x + r:.1f},{y - r:.1f}" stroke="#b00" stroke-width="1.6"/>')
    return f"{body}<title>{escape(tip)}</title>{end}{cross}"


def _polygon(shape: str, x: float, y: float, r: float) -> str:
    corners = {"triangle": 3, "diamond": 4, "pentagon": 5, "star": 10}[shape]
    pts = []
    for i in range(corners):
        angle = -math.pi / 2 + 2 * math.pi * i / corners
        radius = r * (0.45 if shape == "star" and i % 2 else 1.0)
        pts.append(f"{x + radius * math.cos(angle):.1f},{y + radius * math.sin(angle):.1f}")
    return " ".join(pts)


class _Labels:
    """Greedy placement: each label takes the first spot around its point
    (eight close ones, then six further out) that overlaps no label or mark
    placed before.

    Boxes are kept in a grid of CELL-pixel buckets, so scoring a spot looks
    only at the boxes near it: placing n labels costs O(n), not O(n^2) (a
    2,000-job sweep spent a minute here)."""

    OFFSETS = ((7, -6), (7, 12), (-7, -6), (-7, 12), (0, -10), (0, 19), (12, 3), (-12, 3),
               (-7, 26), (-7, -20), (7, 26), (7, -20), (0, 34), (0, -28))  # a second ring when crowded
    CELL = 24.0

    def __init__(self, marks: list[tuple[float, float]], box: tuple[float, float, float, float]):
        self.boxes: list[tuple[float, float, float, float]] = []
        self.grid: dict[tuple[int, int], list[int]] = {}
        self.box = box
        for x, y in marks:
            self._add((x - 5, y - 5, x + 5, y + 5))

    def _cells(self, rect):
        c = self.CELL
        for i in range(int(math.floor(rect[0] / c)), int(math.floor(rect[2] / c)) + 1):
            for j in range(int(math.floor(rect[1] / c)), int(math.floor(rect[3] / c)) + 1):
                yield i, j

    def _add(self, rect) -> None:
        self.boxes.append(rect)
        for cell in self._cells(rect):
            self.grid.setdefault(cell, []).append(len(self.boxes) - 1)

    def _overlap_area(self, rect) -> float:
        x0, y0, x1, y1 = rect
        total = 0.0
        for k in {k for cell in self._cells(rect) for k in self.grid.get(cell, ())}:
            box = self.boxes[k]  # _area, inlined: this is the hot loop of a crowded chart
            width = (x1 if x1 < box[2] else box[2]) - (x0 if x0 > box[0] else box[0])
            if width > 0:
                height = (y1 if y1 < box[3] else box[3]) - (y0 if y0 > box[1] else box[1])
                if height > 0:
                    total += width * height
        return total

    def place(self, x: float, y: float, text: str) -> tuple[float, float, str]:
        """The first free spot inside the plot; if none is free, the one
        inside the plot that overlaps least."""
        width = CHAR_W * len(text)
        best = None
        for dx, dy in self.OFFSETS:
            anchor = "start" if dx > 0 else "end" if dx < 0 else "middle"
            left = x + dx if dx > 0 else x + dx - width if dx < 0 else x - width / 2
            rect = (left, y + dy - 12, left + width, y + dy + 4)  # bold 11 px text with a little air
            inside = self.box[0] <= rect[0] and rect[2] <= self.box[2] and self.box[1] <= rect[1] and \
                rect[3] <= self.box[3]
            score = self._overlap_area(rect) + (0 if inside else 1e6)
            if best is None or score < best[0]:
                best = (score, (x + dx, y + dy, anchor, rect))
            if score == 0:
                break
        choice = best[1]
        self._add(choice[3])
        return choice[0], choice[1], choice[2]


MAX_LABELS = 80  # beyond this many, labels cover the chart instead of naming its points


def _labelled(series: list[Series], lines: bool, fronts) -> set | None:
    """Which (series, job) get a text label, or None for all: a crowded
    scatter labels its Pareto-front points (then the first points of each
    series) up to MAX_LABELS; every mark keeps its tooltip and key entry."""
    targets = [(id(s), p.job) for s in series for p in (sorted(s.points, key=lambda q: q.x)[-1:] if lines
                                                        else s.points)]
    if len(targets) <= MAX_LABELS:
        return None
    on_front = {p.job for front in fronts or [] for p in front}
    ranked = sorted(targets, key=lambda t: t[1] not in on_front)  # stable: front first, then in order
    return set(ranked[:MAX_LABELS])


def _area(a, b) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _svg(kind: str, body: list[str], height: int = H) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" data-plot="{kind}" width="{W}" height="{height}" '
            f'viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="11">' + "".join(body) + "</svg>")


def _frame(title: str, xlabel: str, ylabel: str, ax: Axis, ay: Axis) -> list[str]:
    out = [f'<text x="{(PAD_L + W - PAD_R) / 2}" y="17" text-anchor="middle" font-weight="bold" '
           f'font-size="12">{escape(title)}</text>',
           f'<rect x="{PAD_L}" y="{PAD_T}" width="{W - PAD_L - PAD_R}" height="{H - PAD_T - PAD_B}" fill="none" '
           f'stroke="#999"/>',
           f'<text x="{(PAD_L + W - PAD_R) / 2}" y="{H - 8}" text-anchor="middle">'
           f'{escape(xlabel + (" (log scale)" if ax.log else ""))}</text>',
           f'<text transform="translate(14,{(PAD_T + H - PAD_B) / 2}) rotate(-90)" text-anchor="middle">'
           f'{escape(ylabel + (" (log scale)" if ay.log else ""))}</text>']
    for value, label in ax.ticks():
        px = ax(value)
        out.append(f'<line x1="{px:.1f}" y1="{PAD_T}" x2="{px:.1f}" y2="{H - PAD_B}" stroke="#eee"/>'
                   f'<text class="tick-x" x="{px:.1f}" y="{H - PAD_B + 15}" text-anchor="middle">{label}</text>')
    for value, label in ay.ticks():
        py = ay(value)
        out.append(f'<line x1="{PAD_L}" y1="{py:.1f}" x2="{W - PAD_R}" y2="{py:.1f}" stroke="#eee"/>'
                   f'<text class="tick-y" x="{PAD_L - 5}" y="{py + 4:.1f}" text-anchor="end">{label}</text>')
    return out


def _legend(series: list[Series], extra: list[str]) -> list[str]:
    out, x = [], W - PAD_R + 12
    for i, s in enumerate(series):
        y = PAD_T + 8 + 15 * i
        dash = f' stroke-dasharray="{s.style.dash}"' if s.style.dash else ""
        out.append(f'<g class="legend-item" data-series="{escape(s.name)}"><line x1="{x}" y1="{y}" x2="{x + 18}" '
                   f'y2="{y}" stroke="{s.style.color}"{dash}/>'
                   + _marker(s.style.marker, x + 9, y, s.style.color, True, 'data-legend="1"', s.name)
                   .replace('class="mark"', 'class="legend-mark"')
                   + f'<text class="legend" x="{x + 24}" y="{y + 4}">{escape(s.name)}</text></g>')
    for j, text in enumerate(extra):
        out.append(f'<text class="legend-note" x="{x}" y="{PAD_T + 8 + 15 * (len(series) + j) + 6}" '
                   f'fill="#555">{escape(text)}</text>')
    return out


def chart(kind: str, title: str, xlabel: str, ylabel: str, series: list[Series], lines: bool = False,
          fronts: list[list[Point]] | None = None, discrete_x: bool = False) -> str:
    """Lines: each series joined in x order and labelled at its end.
    Scatter (lines=False): each point labelled with its key number.
    ``fronts`` (one per workload) are drawn as thick grey lines under the marks."""
    points = [p for s in series for p in s.points]
    if not points:
        return _svg(kind, [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text>'])
    ax = Axis([p.x for p in points], PAD_L, W - PAD_R, discrete=discrete_x)
    ay = Axis([p.y for p in points], H - PAD_B, PAD_T)
    body = _frame(title, xlabel, ylabel, ax, ay)
    for front in fronts or []:
        path = " ".join(f"{ax(p.x):.1f},{ay(p.y):.1f}" for p in front)
        jobs = " ".join(p.job for p in front)
        body.append(f'<polyline class="front" data-jobs="{escape(jobs)}" points="{path}" fill="none" '
                    f'stroke="#222" stroke-opacity="0.35" stroke-width="7" stroke-linejoin="round" '
                    f'stroke-linecap="round"/>')
        # A halo on every front point: a one-point front is visible too.
        body.extend(f'<circle class="front-point" data-job="{escape(p.job)}" cx="{ax(p.x):.1f}" cy="{ay(p.y):.1f}" '
                    f'r="9" fill="#222" fill-opacity="0.18" stroke="#222" stroke-opacity="0.45"/>' for p in front)
    # Discrete x (batch sizes): each series is nudged sideways a little, so
    # series with equal values at one x stay visible side by side.
    nudge = {id(s): (i - (len(series) - 1) / 2) * 5.0 if discrete_x else 0.0 for i, s in enumerate(series)}
    labels = _Labels([(ax(p.x) + nudge[id(s)], ay(p.y)) for s in series for p in s.points],
                     (PAD_L, PAD_T, W - PAD_R, H - PAD_B))
    for s in series:
        pts, dx = sorted(s.points, key=lambda p: p.x), nudge[id(s)]
        group = [f'<g class="series" data-series="{escape(s.name)}">']
        if lines and len(pts) > 1:
            path = " ".join(f"{ax(p.x) + dx:.1f},{ay(p.y):.1f}" for p in pts)
            dash = f' stroke-dasharray="{s.style.dash}"' if s.style.dash else ""
            group.append(f'<polyline points="{path}" fill="none" stroke="{s.style.color}" stroke-width="1.6"{dash}/>')
        for p in pts:
            attrs = (f'data-job="{escape(p.job)}" data-x="{_num(p.x)}" data-y="{_num(p.y)}" '
                     f'data-series="{escape(s.name)}" data-gate="{"pass" if p.passed else "fail"}"')
            group.append(_marker(s.style.marker, ax(p.x) + dx, ay(p.y), s.style.color, p.passed, attrs, p.text))
        group.append("</g>")
        body.extend(group)
    labelled = _labelled(series, lines, fronts)
    for s in series:  # labels after every mark, so marks are avoided
        pts, dx = sorted(s.points, key=lambda p: p.x), nudge[id(s)]
        targets = pts[-1:] if lines else pts
        for p in targets:
            if labelled is not None and (id(s), p.job) not in labelled:
                continue
            text = s.name if lines else str(p.number)
            lx, ly, anchor = labels.place(ax(p.x) + dx, ay(p.y), text)
            body.append(f'<text class="label" data-job="{escape(p.job)}" x="{lx:.1f}" y="{ly:.1f}" '
                        f'text-anchor="{anchor}" fill="{s.style.color}" font-weight="bold">{escape(text)}</text>')
    extra = ["hollow + cross: failed", "  the accuracy gate"] if any(not p.passed for p in points) else []
    if fronts:
        extra.append("grey band/halo: Pareto front")
    if labelled is not None:
        extra += [f"numbers on {len(labelled)} of {len(points)} points", "  (the rest: hover a mark)"]
    return _svg(kind, body + _legend(series, extra))


def bar_chart(kind: str, title: str, xlabel: str, bars: list[dict]) -> str:
    """Horizontal bars, each labelled with its name and value, over an axis
    with values (0 to a round number past the longest bar):
    {label, value, job, style?, passed?}. Every text fits the canvas: the
    value labels have their own column, the axis its own row."""
    if not bars:
        return _svg(kind, [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text>'])
    rows_h = 17 * len(bars)
    height = max(160, PAD_T + rows_h + 56)
    values = [_num(b["value"]) + ("" if b.get("passed", True) else " (failed gate)") for b in bars]
    label_w = min(300, max(CHAR_W * len(b["label"]) for b in bars) + 12)
    value_w = max(CHAR_W * len(v) for v in values) + 10
    span = max(W - label_w - value_w - 8, 60)
    top = max(b["value"] for b in bars) or 1.0
    step = _nice_step(top, 5)
    axis_top = step * math.ceil(top / step)
    axis_y = PAD_T + rows_h + 4
    body = [f'<text x="{W / 2}" y="17" text-anchor="middle" font-weight="bold" font-size="12">{escape(title)}</text>',
            f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + span:.1f}" y2="{axis_y}" stroke="#999"/>',
            f'<text x="{label_w + span / 2:.1f}" y="{height - 8}" text-anchor="middle">{escape(xlabel)}</text>']
    for i in range(int(round(axis_top / step)) + 1):
        tick = i * step
        px = label_w + tick / axis_top * span
        body.append(f'<line x1="{px:.1f}" y1="{PAD_T - 2}" x2="{px:.1f}" y2="{axis_y + 3}" stroke="#eee"/>'
                    f'<text class="tick-x" x="{px:.1f}" y="{axis_y + 15}" text-anchor="middle">{_num(tick)}</text>')
    fits = max(int((label_w - 12) / CHAR_W), 4)
    for i, (bar, value) in enumerate(zip(bars, values)):
        y = PAD_T + 17 * i
        shown = bar["label"] if len(bar["label"]) <= fits else bar["label"][:fits - 1] + "\u2026"
        width = max(bar["value"] / axis_top * span, 1.0)
        style = bar.get("style") or style_for("", "fp32")
        passed = bar.get("passed", True)
        attrs = (f'data-job="{escape(str(bar["job"]))}" data-x="{_num(bar["value"])}" '
                 f'data-series="{escape(bar.get("series", ""))}" data-gate="{"pass" if passed else "fail"}"')
        fill = style.color if passed else "#fff"
        body.append(f'<text class="label" x="{label_w - 6}" y="{y + 11}" text-anchor="end">{escape(shown)}'
                    f'</text><rect class="mark" {attrs} x="{label_w}" y="{y}" width="{width:.1f}" height="13" '
                    f'fill="{fill}" stroke="{style.color}"><title>{escape(bar["label"])}: {_num(bar["value"])}'
                    f'</title></rect><text class="value" x="{label_w + width + 4:.1f}" y="{y + 11}">'
                    f'{value}</text>')
    return _svg(kind, body, height)


def _ratio_ticks(lo: float, hi: float) -> list[float]:
    """Readable ticks for a log10 range [lo, hi] of ratios around 1."""
    for mults in ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.1, 1.25, 1.5, 2, 3, 5, 7, 9, 0.9, 0.8)):
        ticks = sorted({round(m * 10.0 ** e, 6) for e in range(math.floor(lo) - 1, math.ceil(hi) + 1) for m in mults
                        if lo <= math.log10(m * 10.0 ** e) <= hi})
        if len(ticks) >= 4:
            break
    return ticks


def interval_chart(kind: str, title: str, xlabel: str, rows: list[dict], band: float = 0.0) -> str:
    """A forest plot: per row a point with its interval on a log axis
    around 1 (ratios), with a shaded no-change band of +-``band``.
    rows: {label, value, low, high, job, verdict}."""
    if not rows:
        return _svg(kind, [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text>'])
    height = PAD_T + 50 + 18 * len(rows)
    label_w = min(300, max(CHAR_W * len(r["label"]) for r in rows) + 12)
    values = [v for r in rows for v in (r["low"], r["high"], r["value"]) if v and math.isfinite(v)]
    lo, hi = math.log10(min(values + [1 / (1 + band) / 1.02])), math.log10(max(values + [(1 + band) * 1.02]))
    x0, x1 = label_w, W - 100

    def px(v: float) -> float:
        return x0 + (math.log10(v) - lo) / (hi - lo) * (x1 - x0)

    colors = {"slower": "#c4282d", "faster": "#2a9d3f"}
    body = [f'<text x="{W / 2}" y="17" text-anchor="middle" font-weight="bold" font-size="12">{escape(title)}</text>',
            f'<rect x="{px(1 / (1 + band)):.1f}" y="{PAD_T}" width="{px(1 + band) - px(1 / (1 + band)):.1f}" '
            f'height="{18 * len(rows)}" fill="#eee"/>',
            f'<line x1="{px(1):.1f}" y1="{PAD_T}" x2="{px(1):.1f}" y2="{PAD_T + 18 * len(rows)}" stroke="#666"/>',
            f'<text x="{(x0 + x1) / 2}" y="{height - 8}" text-anchor="middle">{escape(xlabel)}</text>']
    for v in _ratio_ticks(lo, hi):
        body.append(f'<text class="tick-x" x="{px(v):.1f}" y="{PAD_T + 18 * len(rows) + 14}" '
                    f'text-anchor="middle">{_num(v)}</text>')
    for i, r in enumerate(rows):
        y = PAD_T + 18 * i + 9
        color = colors.get(r["verdict"], "#444")
        low, high = r["low"] or r["value"], r["high"] or r["value"]
        attrs = f'data-job="{escape(str(r["job"]))}" data-x="{_num(r["value"])}" data-verdict="{r["verdict"]}"'
        body.append(f'<text class="label" x="{label_w - 6}" y="{y + 4}" text-anchor="end">{escape(r["label"])}</text>'
                    f'<line x1="{px(low):.1f}" y1="{y}" x2="{px(high):.1f}" y2="{y}" stroke="{color}" '
                    f'stroke-width="2"/><circle class="mark" {attrs} cx="{px(r["value"]):.1f}" cy="{y}" r="4" '
                    f'fill="{color}"/><text class="value" x="{x1 + 6}" y="{y + 4}" fill="{color}">'
                    f'{_num(r["value"])}x {escape(r["verdict"])}</text>')
    return _svg(kind, body, height)
