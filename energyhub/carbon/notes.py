"""Plain-language notes on how a report's numbers were made: nothing netted or left silently."""

from __future__ import annotations

import pandas as pd

from energyhub.carbon.factors import SiteFactors
from energyhub.carbon.models import Coverage
from energyhub.carbon.tree import COMBUSTION, HEAT_PRODUCERS, MeterInfo, MeterRole, SiteTree
from energyhub.numbers import coverage_percent

Entry = tuple[str, MeterInfo, MeterRole]


def _heat(tree: SiteTree, ledger: pd.DataFrame) -> list[str]:
    notes = []
    heat = ledger.groupby("site_id")[["heat_kwh", "heat_purchased_kwh"]].sum()
    for site_id, row in heat.iterrows():
        if row["heat_kwh"] > 0 and row["heat_purchased_kwh"] == 0:
            makers = sorted(
                a
                for s in tree.chain(str(site_id))
                for a, kind in s.asset_types.items()
                if kind in HEAT_PRODUCERS
            )
            notes.append(
                f"{site_id}: heat ({row['heat_kwh']:,.0f} kWh) is made on site by "
                f"{', '.join(makers) or 'its plant'}, whose electricity and gas are counted: not "
                "Scope 2 (set carbon.heat_purchased: true if it is bought)"
            )
    if ledger["heat_purchased_kwh"].sum() > 0:
        notes.append("purchased heat is Scope 2 but not priced: the site file has no heat price")
    return notes


def _combustion(tree: SiteTree, entries: list[Entry]) -> list[str]:
    """Sites with gas-burning assets but no gas meter: their Scope 1 is not measured."""
    metered = {meter.site_id for _, meter, role in entries if role.gas}
    notes = []
    for site_id in sorted({meter.site_id for _, meter, _ in entries} - metered):
        burners = sorted(a for a, t in tree.get(site_id).asset_types.items() if t in COMBUSTION)
        if burners:
            notes.append(
                f"{site_id}: {', '.join(burners)} burn gas but the site has no gas meter: "
                "their Scope 1 emissions are not measured"
            )
    return notes


def _unmetered(tree: SiteTree, site_id: str, entries: list[Entry]) -> list[str]:
    """Buildings under the site that have no energy meters at all."""
    metered = {meter.site_id for _, meter, _ in entries}
    return [
        f"{s.id}: no energy meters, so nothing of it is in the totals"
        for s in tree.subtree(site_id)
        if s.kind == "building" and s.id not in metered
    ]


def _totals(ledger: pd.DataFrame, entries: list[Entry]) -> list[str]:
    notes = []
    made = ledger["cooling_kwh"].sum() - ledger["cooling_purchased_kwh"].sum()
    if made > 0:
        notes.append(
            f"cooling made on site ({made:,.0f} kWh) is reported, not turned into emissions: "
            "the chillers' electricity is metered already"
        )
    supply = {meter.id for _, meter, role in entries if role.electricity < 0}
    supplied = ledger.loc[ledger["meter_id"].isin(supply), ["pv_kwh", "generation_kwh"]].sum()
    if supplied.sum() > 0:
        notes.append(
            f"park-level generation ({supplied.sum():,.0f} kWh) is subtracted from the "
            "electricity bought where the park used it: the buildings' meters include what it "
            "supplied"
        )
    exported = ledger["exported_kwh"].sum()
    if exported > 0.5:
        notes.append(
            f"{exported:,.0f} kWh exported in steps of net export: reported as exported_kwh, "
            "never subtracted from the electricity bought or from Scope 2"
        )
    if ledger["gas_kwh"].sum() > 0 and not ledger.loc[ledger["gas_kwh"] != 0, "gas_cny"].any():
        notes.append("gas is not priced: the park's site file has no gas price")
    return notes


def _factors(site_id: str, own: SiteFactors, factors: dict[str, SiteFactors]) -> list[str]:
    return [
        f"{other}: uses its own factors (grid {f.grid_kg_per_kwh:g}, gas {f.gas_kg_per_kwh:g}, "
        f"heat {f.heat_kg_per_kwh:g} kg/kWh, carbon {f.price_cny_per_t:g} CNY/t)"
        for other, f in sorted(factors.items())
        if other != site_id and f != own
    ]


def _coverage(coverage: Coverage) -> list[str]:
    if coverage.share >= 1.0:
        return []
    return [
        f"data coverage {coverage_percent(coverage.share)}: {len(coverage.incomplete)} of "
        f"{coverage.meters} meters miss intervals. Nothing is interpolated: a power meter's "
        "energy in a gap is missing from the totals; a counter's is measured and lands in the "
        "interval after the gap"
    ]


def explain(
    tree: SiteTree,
    site_id: str,
    entries: list[Entry],
    ledger: pd.DataFrame,
    factors: dict[str, SiteFactors],
    own: SiteFactors,
    coverage: Coverage,
) -> list[str]:
    """Every note that applies to one window's accounting."""
    return [
        *_coverage(coverage),
        *_heat(tree, ledger),
        *_combustion(tree, entries),
        *_unmetered(tree, site_id, entries),
        *_totals(ledger, entries),
        *_factors(site_id, own, factors),
    ]
