"""Market-based Scope 2 (GHG Protocol Scope 2 Guidance): the electricity a site bought, covered
first by the certificates retired for it (0 kg/kWh), then by its green-power contract claims (at
the supplier's factor), the rest at the residual-mix factor of the site file.

A retirement counts for the sites at or above the one it was made for, and for a report period
in proportion to how much of its own period falls inside, by time (a retirement for 2026 counts
31/365 of its MWh in a report for October 2026). What instruments offer beyond
the electricity bought is not applied, and reported as `unapplied_kwh`. Heat is the same in both
methods (no contractual instruments for heat here).
"""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection

from energyhub.carbon.market_models import InstrumentUse, MarketScope2
from energyhub.carbon.models import CarbonReport
from energyhub.carbon.tree import SiteTree
from energyhub.store.green import RetirementRow, retirements

NO_RESIDUAL_MIX = (
    "no residual_mix_kg_per_kwh in the site file: the location-based grid factor stands in "
    "for the residual mix (GHG Protocol Scope 2 Guidance allows this, and asks that it be said)"
)


def residual_mix(tree: SiteTree, site_id: str) -> tuple[float, str] | None:
    """The most specific residual-mix factor of the site's chain and its source, if any."""
    for site in reversed(tree.chain(site_id)):
        carbon = site.city_carbon if site.kind == "city" else site.carbon
        if carbon is not None and carbon.residual_mix_kg_per_kwh is not None:
            source = carbon.residual_mix_source or f"site file ({site.kind} {site.id})"
            return carbon.residual_mix_kg_per_kwh, source
    return None


def _share(row: RetirementRow, start: datetime, end: datetime) -> float:
    """The share of the retirement's period that lies in [start, end)."""
    inside = min(end, row.period_end) - max(start, row.period_start)
    return max(inside / (row.period_end - row.period_start), 0.0)


def _serials(row: RetirementRow) -> str | None:
    return None if row.serial_first is None else f"{row.serial_first}-{row.serial_last}"


def market_scope2(
    report: CarbonReport, rows: list[RetirementRow], factor: tuple[float, str] | None
) -> MarketScope2:
    """Both Scope 2 figures of a report, given the retirements for its sites and period."""
    bought = max(report.energy_kwh.electricity, 0.0)
    left = bought
    uses: list[InstrumentUse] = []
    offered = 0.0
    certificates = [r for r in rows if r.kind == "certificate"]
    contracts = [r for r in rows if r.kind == "contract"]
    for row in [*certificates, *contracts]:
        in_period = row.mwh * 1000.0 * _share(row, report.start, report.end)
        applied = min(in_period, left)
        left -= applied
        offered += in_period
        kg_per_kwh = row.supplier_kg_per_kwh if row.kind == "contract" else 0.0
        uses.append(
            InstrumentUse(
                retirement_id=row.id,
                instrument_id=row.instrument_id,
                kind="certificate" if row.kind == "certificate" else "contract",
                site_id=row.site_id,
                registry=row.registry,
                project=row.project,
                technology=row.technology,
                location=row.location,
                vintage=row.vintage,
                serials=_serials(row),
                period=row.period_label,
                period_start=row.period_start,
                period_end=row.period_end,
                mwh=row.mwh,
                in_period_kwh=in_period,
                applied_kwh=applied,
                kg_per_kwh=kg_per_kwh or 0.0,
                kg=applied * (kg_per_kwh or 0.0),
            )
        )
    certificate_kwh = sum(u.applied_kwh for u in uses if u.kind == "certificate")
    contract_kwh = sum(u.applied_kwh for u in uses if u.kind == "contract")
    contract_kg = sum(u.kg for u in uses if u.kind == "contract")
    value, source = factor or (report.factors.grid_kg_per_kwh, NO_RESIDUAL_MIX)
    market_electricity = contract_kg + left * value
    return MarketScope2(
        location_kg=report.scope2_kg,
        market_kg=market_electricity + report.scope2_heat_kg,
        location_electricity_kg=report.scope2_electricity_kg,
        market_electricity_kg=market_electricity,
        heat_kg=report.scope2_heat_kg,
        electricity_kwh=bought,
        certificate_kwh=certificate_kwh,
        contract_kwh=contract_kwh,
        contract_kg=contract_kg,
        residual_kwh=left,
        residual_mix_kg_per_kwh=value,
        residual_mix_source=source,
        unapplied_kwh=offered - certificate_kwh - contract_kwh,
        instruments=uses,
    )


async def with_market_scope2(
    conn: AsyncConnection, tree: SiteTree, report: CarbonReport
) -> CarbonReport:
    """The report with its market-based Scope 2 beside the location-based one."""
    sites = [s.id for s in tree.subtree(report.site_id)]
    rows = await retirements(conn, sites, report.start, report.end)
    dual = market_scope2(report, rows, residual_mix(tree, report.site_id))
    notes = list(report.notes)
    if dual.residual_mix_source == NO_RESIDUAL_MIX and dual.residual_kwh > 0:
        notes.append(f"market-based Scope 2: {NO_RESIDUAL_MIX}")
    if dual.unapplied_kwh > 0.5:
        notes.append(
            f"market-based Scope 2: {dual.unapplied_kwh:,.0f} kWh of retired instruments exceed "
            "the electricity bought in the period and are not applied"
        )
    return report.model_copy(update={"scope2_market": dual, "notes": notes})
