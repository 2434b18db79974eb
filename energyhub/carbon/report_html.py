"""The printable HTML carbon report: one self-contained page with inline SVG charts and tables."""

from __future__ import annotations

from datetime import datetime
from html import escape

from energyhub.carbon.charts import Series, stacked_bars, stacked_columns, target_gauge
from energyhub.carbon.market_html import scope2_table
from energyhub.carbon.models import CarbonReport, Line, TargetPosition
from energyhub.numbers import coverage_percent

SCOPE1, SCOPE2_EL, SCOPE2_HEAT, SCOPE2_COOLING = "#b5523b", "#3b6fb5", "#d89a2b", "#4aa3a3"
METERED, ALLOCATED = "#3b6fb5", "#9bb7dd"

STYLE = """
@page { size: A4; margin: 14mm; }
body { font-family: Helvetica, Arial, sans-serif; color: #222; max-width: 720px; margin: auto; }
h1 { font-size: 20px; margin-bottom: 2px; } h2 { font-size: 15px; margin-top: 22px; }
.sub { color: #666; font-size: 12px; }
.tiles { display: grid; grid-template-columns: repeat(4, 1fr); gap: 8px; margin: 14px 0; }
.tile { border: 1px solid #ccc; border-radius: 4px; padding: 8px; }
.tile b { display: block; font-size: 17px; } .tile span { color: #666; font-size: 11px; }
table { border-collapse: collapse; width: 100%; font-size: 11px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 5px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.flag { color: #b5523b; font-weight: bold; }
figure { margin: 10px 0; break-inside: avoid; } ul { font-size: 11px; color: #444; }
"""


def _kg(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _mass(kg: float) -> str:
    """Kilograms below 10 t, tonnes above: the figure a reader takes in at a glance."""
    return f"{kg:,.0f} kg" if abs(kg) < 10_000 else f"{kg / 1000:,.1f} t"


def _when(moment: datetime, timezone: str) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") + f" ({timezone})"


def _tile(label: str, value: str) -> str:
    return f'<div class="tile"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def _tiles(report: CarbonReport) -> str:
    trend = report.trend
    change = "—" if trend.change_pct is None else f"{trend.change_pct:+.1f} %"
    intensity = report.intensity_kg_per_m2
    tiles = [
        _tile("total emissions, CO₂", _mass(report.total_kg)),
        _tile("Scope 1 (gas), CO₂", _mass(report.scope1_kg)),
        _tile("Scope 2 (electricity, heat, cooling), CO₂", _mass(report.scope2_kg)),
        _tile("vs previous period", change),
        _tile("intensity, kg CO₂/m²", "—" if intensity is None else f"{intensity:,.2f}"),
        _tile("PV generation, kWh", f"{report.pv_kwh:,.0f}"),
        _tile("electricity exported (not netted), kWh", f"{report.exported_kwh:,.0f}"),
        _tile("avoided by PV (not subtracted), CO₂", _mass(report.avoided_kg)),
        _tile("data coverage", coverage_percent(report.coverage.share)),
    ]
    return f'<div class="tiles">{"".join(tiles)}</div>'


def _daily_chart(report: CarbonReport) -> str:
    days = report.daily
    return stacked_columns(
        "Emissions per day by scope",
        [d.day.strftime("%m-%d") for d in days],
        [
            Series("Scope 1 gas", SCOPE1, [d.scope1_kg for d in days]),
            Series("Scope 2 electricity", SCOPE2_EL, [d.scope2_electricity_kg for d in days]),
            Series("Scope 2 heat", SCOPE2_HEAT, [d.scope2_heat_kg for d in days]),
            Series("Scope 2 cooling", SCOPE2_COOLING, [d.scope2_cooling_kg for d in days]),
        ],
        "kg CO₂",
    )


def _label(line: Line) -> str:
    if line.kind == "common":
        return f"{line.site_id} common"
    if line.kind == "park-own":
        return f"{line.site_id} connection less buildings"
    return line.site_id


def _lines_chart(report: CarbonReport) -> str:
    lines = report.lines
    labels = [_label(line) for line in lines]
    if any(line.allocated_kg is not None for line in lines):
        series = [
            Series("metered", METERED, [line.metered_kg or 0.0 for line in lines]),
            Series(
                "allocated by floor area", ALLOCATED, [line.allocated_kg or 0.0 for line in lines]
            ),
        ]
    else:
        series = [
            Series("Scope 1", SCOPE1, [line.scope1_kg for line in lines]),
            Series("Scope 2", SCOPE2_EL, [line.scope2_kg for line in lines]),
        ]
    return stacked_bars("Emissions by part of the site", labels, series, "kg")


def _energy_chart(report: CarbonReport) -> str:
    energy = report.energy_kwh
    rows = [
        ("electricity bought", energy.electricity),
        ("electricity exported", report.exported_kwh),
        ("heat", energy.heat),
        ("cooling", energy.cooling),
        ("gas", energy.gas),
        ("PV generation", report.pv_kwh),
        ("other generation", report.generation_kwh),
    ]
    return stacked_bars(
        "Energy by carrier",
        [name for name, _ in rows],
        [Series("kWh", "#5b8c5a", [value for _, value in rows])],
        "kWh",
    )


def _row(cells: list[str], header: bool = False) -> str:
    tag = "th" if header else "td"
    return "<tr>" + "".join(f"<{tag}>{escape(c)}</{tag}>" for c in cells) + "</tr>"


def _lines_table(lines: list[Line]) -> str:
    head = ["part", "kind", "m²", "electricity kWh", "heat kWh", "gas kWh", "Scope 1 kg"]
    head += [
        "Scope 2 kg",
        "Scope 2 market kg",
        "total kg",
        "metered kg",
        "allocated kg",
        "cost CNY",
    ]
    rows = [_row(head, header=True)]
    for line in lines:
        area = "—" if line.floor_area_m2 is None else f"{line.floor_area_m2:,.0f}"
        energy = line.energy_kwh
        cells = [line.site_id, line.kind, area, f"{energy.electricity:,.0f}", f"{energy.heat:,.0f}"]
        cells += [f"{energy.gas:,.0f}", _kg(line.scope1_kg), _kg(line.scope2_kg)]
        cells.append(_kg(line.scope2_market_kg))
        cells += [_kg(line.total_kg), _kg(line.metered_kg), _kg(line.allocated_kg)]
        rows.append(_row([*cells, f"{line.cost_cny.total:,.2f}"]))
    return f"<table>{''.join(rows)}</table>"


def _target(target: TargetPosition) -> str:
    flag = (
        '<p class="flag">Projected emissions exceed the target.</p>'
        if target.exceeds_target
        else ""
    )
    gauge = target_gauge(
        f"Target {target.year}",
        target.emissions_to_date_kg,
        target.projected_year_kg,
        target.target_kg_per_year,
        target.exceeds_target,
    )
    rows = [
        _row(["", "kg CO₂", "CNY"], header=True),
        _row(["target / allowance", _kg(target.target_kg_per_year), ""]),
        _row(
            [
                "position to date",
                _kg(target.position_to_date_kg),
                f"{target.position_to_date_cny:,.2f}",
            ]
        ),
        _row(
            [
                "position projected",
                _kg(target.position_projected_kg),
                f"{target.position_projected_cny:,.2f}",
            ]
        ),
    ]
    return (
        f"<h2>Target and allowance {target.year}</h2>{flag}<figure>{gauge}</figure>"
        f'<table>{"".join(rows)}</table><p class="sub">{escape(target.method)}; carbon price '
        f"{target.price_cny_per_t:g} CNY/t</p>"
    )


def _factors(report: CarbonReport) -> str:
    f = report.factors
    year = "flat values" if f.factor_year is None else f"factor year {f.factor_year}"
    items = [
        f"<li>{escape(key)} = {getattr(f, key):g}: {escape(source)}</li>"
        for key, source in f.sources.items()
    ]
    if f.grid_series:
        items.append(
            f"<li>hourly grid series {escape(f.grid_series)} priced {f.grid_series_share:.0%} "
            "of the electricity</li>"
        )
    return f"<h2>Emission factors ({escape(year)})</h2><ul>{''.join(items)}</ul>"


def render_html(report: CarbonReport) -> str:
    """The report as one printable HTML page with its charts inline."""
    name = report.site_name or report.site_id
    period = f"{_when(report.start, report.timezone)} to {_when(report.end, report.timezone)}"
    coverage = report.coverage
    notes = "".join(f"<li>{escape(n)}</li>" for n in report.notes)
    parts = [
        f"<h1>Carbon report — {escape(name)} ({escape(report.kind)})</h1>",
        f'<div class="sub">{escape(period)}</div>',
        _tiles(report),
        f"<figure>{_daily_chart(report)}</figure>",
        f"<figure>{_energy_chart(report)}</figure>",
    ]
    if report.lines:
        parts += [f"<figure>{_lines_chart(report)}</figure>", _lines_table(report.lines)]
    if report.target is not None:
        parts.append(_target(report.target))
    if report.scope2_market is not None:
        parts.append(scope2_table(report.scope2_market))
    parts += [
        _factors(report),
        f"<h2>Data coverage {coverage_percent(coverage.share)}</h2>"
        f'<p class="sub">{coverage.present_intervals:,}'
        f" of {coverage.expected_intervals:,} {coverage.interval_minutes}-minute intervals of "
        f"{coverage.meters} meters have data; gaps are not interpolated.</p>",
        f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "",
    ]
    title = escape(f"Carbon report {report.site_id}")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
