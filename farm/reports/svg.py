"""Small inline-SVG charts (no plotting dependency, works offline).

Every mark carries ``data-job`` and ``data-x``/``data-y`` attributes and a
``<title>`` tooltip, so the figures can be checked in the DOM.
"""

from __future__ import annotations

import math
from html import escape

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 560, 300, 64, 150, 28, 44
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / count))
    for mult in (1, 2, 5, 10):
        if (hi - lo) / (step * mult) <= count:
            step *= mult
            break
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def _num(value: float) -> str:
    return f"{value:.4g}"


class Axes:
    def __init__(self, xs, ys, log_y: bool = False):
        self.log_y = log_y
        ys = [math.log10(y) for y in ys if y > 0] if log_y else list(ys)
        self.x0, self.x1 = _span(xs)
        self.y0, self.y1 = _span(ys or [0.0])

    def x(self, v: float) -> float:
        return PAD_L + (v - self.x0) / (self.x1 - self.x0) * (W - PAD_L - PAD_R)

    def y(self, v: float) -> float:
        if self.log_y:
            v = math.log10(max(v, 1e-300))
        return H - PAD_B - (v - self.y0) / (self.y1 - self.y0) * (H - PAD_T - PAD_B)

    def frame(self, title: str, xlabel: str, ylabel: str) -> list[str]:
        out = [f'<text x="{W / 2}" y="16" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
               f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}" stroke="#333"/>',
               f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{H - PAD_B}" stroke="#333"/>',
               f'<text x="{(PAD_L + W - PAD_R) / 2}" y="{H - 8}" text-anchor="middle">{escape(xlabel)}</text>',
               f'<text transform="translate(14,{H / 2}) rotate(-90)" text-anchor="middle">{escape(ylabel)}</text>']
        for t in _ticks(self.x0, self.x1):
            out.append(f'<text x="{self.x(t):.1f}" y="{H - PAD_B + 14}" text-anchor="middle">{_num(t)}</text>')
        for t in _ticks(self.y0, self.y1):
            label = _num(10 ** t) if self.log_y else _num(t)
            py = H - PAD_B - (t - self.y0) / (self.y1 - self.y0) * (H - PAD_T - PAD_B)
            out.append(f'<text x="{PAD_L - 4}" y="{py + 4:.1f}" text-anchor="end">{label}</text>')
        return out


def _span(values) -> tuple[float, float]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    if lo == hi:
        lo, hi = lo - (abs(lo) * 0.1 or 1), hi + (abs(hi) * 0.1 or 1)
    margin = (hi - lo) * 0.05
    return lo - margin, hi + margin


def _svg(kind: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" data-plot="{kind}" width="{W}" height="{H}" '
            f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">' + "".join(body) + "</svg>")


def _point(ax: Axes, p: dict, color: str, shape: str = "circle") -> str:
    x, y = ax.x(p["x"]), ax.y(p["y"])
    tip = escape(p.get("label", ""))
    attrs = f'data-job="{escape(str(p.get("job", "")))}" data-x="{_num(p["x"])}" data-y="{_num(p["y"])}"'
    if shape == "cross":
        return (f'<path class="mark" {attrs} d="M{x - 4:.1f},{y - 4:.1f}L{x + 4:.1f},{y + 4:.1f}M{x - 4:.1f},'
                f'{y + 4:.1f}L{x + 4:.1f},{y - 4:.1f}" stroke="{color}" stroke-width="2"><title>{tip}</title></path>')
    return f'<circle class="mark" {attrs} cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}"><title>{tip}</title></circle>'


def line_chart(kind: str, title: str, xlabel: str, ylabel: str, series: dict[str, list[dict]],
               lines: bool = True, log_y: bool = False, front: list[dict] | None = None) -> str:
    """series: name -> points {x, y, job, label, shape?}. ``front`` draws a
    highlighted polyline (the Pareto front)."""
    points = [p for pts in series.values() for p in pts]
    if not points:
        return _svg(kind, [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text>'])
    ax = Axes([p["x"] for p in points], [p["y"] for p in points], log_y)
    body = ax.frame(title, xlabel, ylabel)
    if front:
        path = " ".join(f"{ax.x(p['x']):.1f},{ax.y(p['y']):.1f}" for p in front)
        body.append(f'<polyline class="front" points="{path}" fill="none" stroke="#000" stroke-dasharray="4 3"/>')
    for i, (name, pts) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        pts = sorted(pts, key=lambda p: p["x"])
        if lines and len(pts) > 1:
            path = " ".join(f"{ax.x(p['x']):.1f},{ax.y(p['y']):.1f}" for p in pts)
            body.append(f'<polyline points="{path}" fill="none" stroke="{color}"/>')
        body.extend(_point(ax, p, color, p.get("shape", "circle")) for p in pts)
        ly = PAD_T + 14 * i
        body.append(f'<rect x="{W - PAD_R + 10}" y="{ly}" width="10" height="10" fill="{color}"/>'
                    f'<text class="legend" x="{W - PAD_R + 24}" y="{ly + 9}">{escape(name)}</text>')
    return _svg(kind, body)


def bar_chart(kind: str, title: str, xlabel: str, bars: list[dict]) -> str:
    """Horizontal bars: {label, value, job}."""
    if not bars:
        return _svg(kind, [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text>'])
    height = max(H, PAD_T + PAD_B + 16 * len(bars))
    top = max(b["value"] for b in bars) or 1.0
    body = [f'<text x="{W / 2}" y="16" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
            f'<text x="{W / 2}" y="{height - 8}" text-anchor="middle">{escape(xlabel)}</text>']
    span = W - 200 - 80
    for i, bar in enumerate(bars):
        y = PAD_T + 16 * i
        width = bar["value"] / top * span
        attrs = f'data-job="{escape(str(bar["job"]))}" data-x="{_num(bar["value"])}"'
        body.append(f'<text x="196" y="{y + 11}" text-anchor="end">{escape(bar["label"])}</text>'
                    f'<rect class="mark" {attrs} x="200" y="{y}" width="{width:.1f}" height="12" fill="{COLORS[0]}">'
                    f'<title>{escape(bar["label"])}: {_num(bar["value"])}</title></rect>'
                    f'<text x="{204 + width:.1f}" y="{y + 11}">{_num(bar["value"])}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" data-plot="{kind}" width="{W}" height="{height}" '
            f'viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="11">' + "".join(body) + "</svg>")
