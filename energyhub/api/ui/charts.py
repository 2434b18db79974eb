"""Server-side SVG charts: lines (or steps) over time with limit lines, and bars; no JavaScript.

Every text that reaches the markup is escaped; numbers are formatted here. A chart is a
`<figure>` with a caption, the `<svg>` and a legend, so that a page only places it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup, escape

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 24, 36
TICK_STEPS = tuple(
    timedelta(minutes=m) for m in (15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)
)
PALETTE = (
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
    "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#637939",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Series:
    """One line: a value (or None, a gap) per time of the chart."""

    name: str
    values: Sequence[float | None]
    color: str
    dashed: bool = False


@dataclass(frozen=True, slots=True)
class Band:
    """A shaded range per time of the chart, e.g. a forecast's P10–P90 (None: a gap)."""

    name: str
    low: Sequence[float | None]
    high: Sequence[float | None]
    color: str


@dataclass(frozen=True, slots=True)
class Limit:
    """A horizontal reference line, e.g. a grid connection's import limit."""

    name: str
    value: float
    color: str = "#d62728"


@dataclass(frozen=True, slots=True)
class Bar:
    name: str
    value: float
    color: str


def _markup(html: str) -> Markup:
    """Chart markup: built here from numbers and from text passed through `escape`."""
    return Markup(html)  # noqa: S704  (every interpolated text above is escaped)


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def nice_step(span: float, ticks: int = 5) -> float:
    """A 1, 2 or 5 × 10^k step that cuts `span` into about `ticks` parts."""
    raw = span / ticks if span > 0 else 1.0
    power: float = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)


def _number(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{value:,.{decimals}f}"


def _y_range(values: Sequence[float]) -> tuple[float, float, float]:
    """Axis bounds (always including 0) on whole ticks, and the tick step."""
    lo, hi = min(0.0, *values), max(0.0, *values)
    if hi == lo:
        hi = lo + 1.0
    step = nice_step(hi - lo)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step, step


def _x_ticks(start: datetime, end: datetime) -> Iterator[datetime]:
    """At most 8 local times on whole multiples of a round interval."""
    span = end - start
    step = next((s for s in TICK_STEPS if span / s <= 8), TICK_STEPS[-1])
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    tick = midnight + step * math.ceil((start - midnight) / step)
    while tick <= end:
        yield tick
        tick += step


def _frame(x0: float, x1: float, y0: float, y1: float) -> str:
    return (
        f'<rect class="plot" x="{x0:.1f}" y="{y1:.1f}" width="{x1 - x0:.1f}" '
        f'height="{y0 - y1:.1f}" fill="#ffffff" stroke="#bbbbbb"/>'
    )


def _legend(entries: Sequence[tuple[str, str, bool]]) -> str:
    items = "".join(
        f'<li><span class="swatch{" dashed" if dashed else ""}" '
        f'style="border-color:{escape(colour)}"></span>{escape(name)}</li>'
        for name, colour, dashed in entries
    )
    return f'<ul class="legend">{items}</ul>'


def _path(points: Sequence[tuple[float, float | None]], step_width: float | None) -> str:
    """SVG path data; None breaks the line; with `step_width` each value holds over its step."""
    parts: list[str] = []
    drawing = False
    for x, y in points:
        if y is None:
            drawing = False
            continue
        if step_width is None:
            parts.append(f"{'L' if drawing else 'M'}{x:.1f},{y:.1f}")
        else:
            parts.append(f"{'L' if drawing else 'M'}{x:.1f},{y:.1f}H{x + step_width:.1f}")
        drawing = True
    return "".join(parts)


def _band_paths(
    xs: Sequence[float],
    low: Sequence[float | None],
    high: Sequence[float | None],
    step_width: float | None,
) -> str:
    """Closed SVG path data of a shaded range: one polygon per run of steps with both bounds."""
    runs: list[list[tuple[float, float, float]]] = [[]]
    for x, lo, hi in zip(xs, low, high, strict=True):
        if lo is None or hi is None:
            runs.append([])
        else:
            runs[-1].append((x, lo, hi))
    parts: list[str] = []
    for run in filter(None, runs):
        upper: list[tuple[float, float]] = []
        lower: list[tuple[float, float]] = []
        for x, lo, hi in run:
            ends = (x,) if step_width is None else (x, x + step_width)
            upper += [(e, hi) for e in ends]
            lower += [(e, lo) for e in ends]
        points = upper + lower[::-1]
        parts.append("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in points) + "Z")
    return "".join(parts)  # fmt: skip


def time_chart(
    chart_id: str,
    title: str,
    times: Sequence[datetime],
    series: Sequence[Series],
    *,
    unit: str,
    step: timedelta | None = None,
    limits: Sequence[Limit] = (),
    span: tuple[datetime, datetime] | None = None,
    bands: Sequence[Band] = (),
) -> Markup:
    """Lines over time (local times as given); with `step`, each value holds for one step.

    `bands` are shaded under the lines. The time axis covers `span`, by default the first time
    to the last (plus one step)."""
    values = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    values += [v for b in bands for v in (*b.low, *b.high) if v is not None and math.isfinite(v)]
    if not times or not values:
        empty = (
            f'<svg class="chart empty" data-chart="{escape(chart_id)}" width="{WIDTH}" '
            f'height="60" viewBox="0 0 {WIDTH} 60" role="img"><title>{escape(title)}</title>'
            f'<text x="{LEFT}" y="34" fill="#666666">no data in this window</text></svg>'
        )
        return _markup(f"<figure><figcaption>{escape(title)}</figcaption>{empty}</figure>")
    start, end = span or (times[0], times[-1] + (step or timedelta(0)))
    if end <= start:
        end = start + timedelta(hours=1)
    lo, hi, y_step = _y_range([*values, *(limit.value for limit in limits)])
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP
    seconds = (end - start).total_seconds()

    def x(t: datetime) -> float:
        return x0 + (x1 - x0) * (t - start).total_seconds() / seconds

    def y(v: float) -> float:
        return y0 - (y0 - y1) * (v - lo) / (hi - lo)

    out = [
        f'<svg class="chart" data-chart="{escape(chart_id)}" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" font-size="11" font-family="sans-serif">',
        f"<title>{escape(title)}</title>",
        _frame(x0, x1, y0, y1),
    ]
    for i in range(round((hi - lo) / y_step) + 1):
        v = lo + i * y_step
        out.append(
            f'<line x1="{x0}" x2="{x1}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eeeeee"/>'
            f'<text x="{x0 - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{_number(v, y_step)}</text>'
        )
    for t in _x_ticks(start, end):
        label = t.strftime("%m-%d") if (t.hour, t.minute) == (0, 0) else t.strftime("%H:%M")
        out.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{y1}" y2="{y0}" stroke="#eeeeee"/>'
            f'<text x="{x(t):.1f}" y="{y0 + 16}" text-anchor="middle">{label}</text>'
        )
    out.append(
        f'<text x="{x0 - 6}" y="{y1 - 10}" text-anchor="end" fill="#444444">{escape(unit)}</text>'
    )
    if lo < 0 < hi:
        out.append(f'<line x1="{x0}" x2="{x1}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#888"/>')
    width = None if step is None else (x1 - x0) * step.total_seconds() / seconds
    for b in bands:
        low = [None if v is None else y(v) for v in b.low]
        high = [None if v is None else y(v) for v in b.high]
        out.append(
            f'<path class="band" data-name="{escape(b.name)}" '
            f'd="{_band_paths([x(t) for t in times], low, high, width)}" '
            f'fill="{escape(b.color)}" fill-opacity="0.2" stroke="none"/>'
        )
    for s in series:
        points = [(x(t), None if v is None else y(v)) for t, v in zip(times, s.values, strict=True)]
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        out.append(
            f'<path class="series" data-name="{escape(s.name)}" d="{_path(points, width)}" '
            f'fill="none" stroke="{escape(s.color)}" stroke-width="2"{dash}/>'
        )
    for limit in limits:
        out.append(
            f'<line class="limit" x1="{x0}" x2="{x1}" y1="{y(limit.value):.1f}" '
            f'y2="{y(limit.value):.1f}" stroke="{escape(limit.color)}" stroke-width="1.5" '
            'stroke-dasharray="2 3"/>'
        )
    out.append("</svg>")
    entries = [(s.name, s.color, s.dashed) for s in series]
    entries += [(b.name, b.color, False) for b in bands]
    entries += [(f"{lim.name} {lim.value:,.0f} {unit}", lim.color, True) for lim in limits]
    caption = f"<figcaption>{escape(title)}</figcaption>"
    return _markup(f"<figure>{caption}{''.join(out)}{_legend(entries)}</figure>")


def bar_chart(chart_id: str, title: str, bars: Sequence[Bar], *, unit: str) -> Markup:
    """Horizontal bars from zero, each labelled with its value and unit."""
    width, row, left = 360, 30, 90
    height = TOP + row * len(bars) + 24
    top = max([0.0, *(b.value for b in bars)])
    bottom = min([0.0, *(b.value for b in bars)])
    scale = (width - left - 110) / ((top - bottom) or 1.0)
    zero = left + -bottom * scale
    out = [
        f'<svg class="chart" data-chart="{escape(chart_id)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-size="11" font-family="sans-serif">',
        f"<title>{escape(title)}</title>",
    ]
    for i, b in enumerate(bars):
        y = TOP + i * row
        x = min(zero, zero + b.value * scale)
        out.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{escape(b.name)}</text>'
            f'<rect class="bar" x="{x:.1f}" y="{y}" width="{abs(b.value) * scale:.1f}" '
            f'height="{row - 8}" fill="{escape(b.color)}"/>'
            f'<text x="{max(zero, zero + b.value * scale) + 6:.1f}" y="{y + 15}">'
            f"{b.value:,.1f} {escape(unit)}</text>"
        )
    out.append(
        f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="{TOP - 4}" y2="{height - 18}" stroke="#888"/>'
        "</svg>"
    )
    return _markup(f"<figure><figcaption>{escape(title)}</figcaption>{''.join(out)}</figure>")


def xy_chart(
    chart_id: str,
    title: str,
    points: Sequence[tuple[float, float]],
    *,
    labels: tuple[str, str],
    marked: int | None = None,
) -> Markup:
    """Points (x, y) joined in order, each numbered; `marked` drawn larger and filled."""
    width, height = 480, 260
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    sx = (width - LEFT - RIGHT) / ((x1 - x0) or 1.0)
    sy = (height - TOP - BOTTOM) / ((y1 - y0) or 1.0)

    def at(x: float, y: float) -> tuple[float, float]:
        return LEFT + (x - x0) * sx, height - BOTTOM - (y - y0) * sy

    path = " ".join(f"{px:.1f},{py:.1f}" for px, py in (at(x, y) for x, y in points))
    out = [
        f'<svg class="chart" data-chart="{escape(chart_id)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-size="11" font-family="sans-serif">',
        f"<title>{escape(title)}</title>",
        f'<polyline points="{path}" fill="none" stroke="#1f77b4"/>',
    ]
    for i, (x, y) in enumerate(points):
        px, py = at(x, y)
        big = i == marked
        out.append(
            f'<circle class="point{" marked" if big else ""}" cx="{px:.1f}" cy="{py:.1f}" '
            f'r="{6 if big else 4}" fill="{"#1f77b4" if big else "#fff"}" stroke="#1f77b4"/>'
            f'<text x="{px + 7:.1f}" y="{py - 7:.1f}">{i}</text>'
        )
    out.append(
        f'<text x="{LEFT}" y="{height - 8}">{escape(labels[0])}: {x0:,.0f} – {x1:,.0f}</text>'
        f'<text x="{LEFT}" y="{TOP - 8}">{escape(labels[1])}: {y0:,.0f} – {y1:,.0f}</text></svg>'
    )
    return _markup(f"<figure><figcaption>{escape(title)}</figcaption>{''.join(out)}</figure>")
