"""Inline SVG charts for printed reports: stacked columns, stacked bars, a target gauge.

Plain SVG strings (no JavaScript, no CDN, no plotting library): they print as vectors and open in
any browser. Every text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 680
FONT = 'font-family="Helvetica, Arial, sans-serif" font-size="11"'


@dataclass(frozen=True, slots=True)
class Series:
    """One stacked layer: its name, colour and a value per category."""

    name: str
    color: str
    values: Sequence[float]


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10ⁿ at or above `value` (1 when there is nothing to show)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return float(next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value))


def tick(value: float) -> str:
    """A compact axis label: 1,200 · 12.5k · 2.1M."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:.3g}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:.3g}k"
    return f"{value:,.0f}" if value == round(value) else f"{value:,.1f}"


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {FONT} {extra}>{escape(text)}</text>'
    )


def _legend(series: Sequence[Series], y: float) -> list[str]:
    parts, x = [], 4.0
    for layer in series:
        parts.append(
            f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{layer.color}"/>'
        )
        parts.append(_text(x + 14, y, layer.name))
        x += 24 + 6.5 * len(layer.name)
    return parts


def _svg(height: float, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'width="{WIDTH}" height="{height:.0f}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def stacked_columns(
    title: str, categories: Sequence[str], series: Sequence[Series], unit: str, height: int = 260
) -> str:
    """Vertical stacked columns, one per category (e.g. emissions per day by scope)."""
    left, top, bottom = 56.0, 44.0, 24.0
    plot_w, plot_h = WIDTH - left - 8, height - top - bottom
    totals = [sum(max(s.values[i], 0.0) for s in series) for i in range(len(categories))]
    top_value = nice_max(max(totals, default=0.0))
    body = _legend(series, 12)
    for k in range(5):
        value = top_value * k / 4
        y = top + plot_h - plot_h * value / top_value
        body.append(f'<line x1="{left}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        body.append(_text(left - 4, y + 4, tick(value), "end"))
    body.append(_text(4, top - 14, unit))
    slot = plot_w / max(len(categories), 1)
    label_every = max(1, math.ceil(len(categories) / 16))
    for i, category in enumerate(categories):
        x, base = left + i * slot + slot * 0.15, top + plot_h
        for layer in series:
            h = plot_h * max(layer.values[i], 0.0) / top_value
            body.append(
                f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{slot * 0.7:.1f}" '
                f'height="{h:.1f}" fill="{layer.color}"/>'
            )
            base -= h
        if i % label_every == 0:
            body.append(_text(x + slot * 0.35, top + plot_h + 14, category, "middle"))
    return _svg(height, title, body)


def stacked_bars(title: str, labels: Sequence[str], series: Sequence[Series], unit: str) -> str:
    """Horizontal stacked bars, one per label (e.g. emissions per building or tenant)."""
    left, top, row = 140.0, 30.0, 22.0
    height = top + row * len(labels) + 30
    plot_w = WIDTH - left - 70
    totals = [sum(max(s.values[i], 0.0) for s in series) for i in range(len(labels))]
    top_value = nice_max(max(totals, default=0.0))
    body = _legend(series, 12)
    for i, label in enumerate(labels):
        y, x = top + i * row, left
        body.append(_text(left - 6, y + 14, label[:22], "end"))
        for layer in series:
            w = plot_w * max(layer.values[i], 0.0) / top_value
            body.append(
                f'<rect x="{x:.1f}" y="{y + 3:.1f}" width="{w:.1f}" height="{row - 6:.1f}" '
                f'fill="{layer.color}"/>'
            )
            x += w
        body.append(_text(x + 4, y + 14, f"{totals[i]:,.0f} {unit}"))
    return _svg(height, title, body)


def target_gauge(
    title: str, to_date_kg: float, projected_kg: float, target_kg: float, exceeds: bool
) -> str:
    """Emissions to date and projected to year end against the target (a vertical marker)."""
    left, plot_w, height = 140.0, WIDTH - 220.0, 110.0
    top_value = nice_max(max(projected_kg, target_kg, to_date_kg) * 1.05)
    rows = [
        ("to date", to_date_kg, "#3b6fb5"),
        ("projected year", projected_kg, "#b5523b" if exceeds else "#6aa84f"),
    ]
    body = []
    for i, (label, value, color) in enumerate(rows):
        y = 16 + i * 34
        w = plot_w * max(value, 0.0) / top_value
        body.append(_text(left - 6, y + 17, label, "end"))
        body.append(f'<rect x="{left}" y="{y:.1f}" width="{w:.1f}" height="24" fill="{color}"/>')
        body.append(_text(left + w + 4, y + 17, f"{value:,.0f} kg"))
    x = left + plot_w * target_kg / top_value
    body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="8" y2="90" stroke="#222" stroke-width="2"/>')
    body.append(_text(x, 104, f"target {target_kg:,.0f} kg", "middle"))
    return _svg(height, title, body)
