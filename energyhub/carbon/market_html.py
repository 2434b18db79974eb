"""Scope 2 both ways as an HTML section: the two figures side by side and what made the gap."""

from __future__ import annotations

from html import escape

from energyhub.carbon.market_models import MarketScope2


def _cells(cells: list[str], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{cell}</{tag}>" for cell in cells) + "</tr>"


def scope2_table(market: MarketScope2) -> str:
    """Location-based and market-based Scope 2 side by side, then the instruments applied."""
    rows = [
        _cells(["", "location-based", "market-based"], "th"),
        _cells(
            [
                "electricity, kg CO₂",
                f"{market.location_electricity_kg:,.0f}",
                f"{market.market_electricity_kg:,.0f}",
            ]
        ),
        _cells(["heat, kg CO₂", f"{market.heat_kg:,.0f}", f"{market.heat_kg:,.0f}"]),
        _cells(["cooling, kg CO₂", f"{market.cooling_kg:,.0f}", f"{market.cooling_kg:,.0f}"]),
        _cells(
            [
                "Scope 2, kg CO₂",
                f"<b>{market.location_kg:,.0f}</b>",
                f"<b>{market.market_kg:,.0f}</b>",
            ]
        ),
    ]
    split = (
        f"{market.electricity_kwh:,.0f} kWh bought: {market.certificate_kwh:,.0f} kWh covered by "
        f"certificates (0 kg/kWh), {market.contract_kwh:,.0f} kWh by contracts "
        f"({market.contract_kg:,.0f} kg), {market.residual_kwh:,.0f} kWh at the residual mix "
        f"{market.residual_mix_kg_per_kwh:g} kg/kWh ({escape(market.residual_mix_source)})."
    )
    uses = [
        _cells(
            ["instrument", "kind", "source", "vintage", "serials", "period", "applied kWh"], "th"
        )
    ]
    uses += [
        _cells(
            [
                f"{u.instrument_id} / retirement {u.retirement_id}",
                u.kind,
                escape(f"{u.registry}: {u.project}, {u.technology}, {u.location}"),
                str(u.vintage),
                escape(u.serials or "—"),
                escape(u.period),
                f"{u.applied_kwh:,.0f}",
            ]
        )
        for u in market.instruments
    ]
    listed = f"<table>{''.join(uses)}</table>" if market.instruments else ""
    return (
        "<h2>Scope 2: location-based and market-based</h2>"
        f'<table>{"".join(rows)}</table><p class="sub">{split}</p>{listed}'
    )
