"""The demo's tables: load per park, plans per level, plan vs actual, ingest, where to look."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from rich.table import Table

from energyhub.demo.live import SiteActual
from energyhub.demo.planning import LevelPlan
from energyhub.scheduler.actual import Account

CARRIERS = ("heat", "cooling", "gas", "pv")


@dataclass(frozen=True)
class IngestFigures:
    """What the ingest worker did: all of it, and the history burst on its own."""

    messages: float
    readings: float
    duplicates: float
    rejected: float
    burst_readings: float
    burst_s: float


def load_table(frames: dict[str, pd.DataFrame], title: str) -> Table:
    """Energy and peak per carrier of each park, from its hourly series."""
    table = Table(title=title)
    for column in ("park", "electricity kWh", "peak kW", *(f"{c} kWh" for c in CARRIERS)):
        table.add_column(column.replace("pv", "PV"), justify="right")
    for park, frame in frames.items():
        by_carrier = frame.groupby("carrier")["power_kw"]
        energy = by_carrier.sum()  # hourly means: kW · 1 h
        peak = by_carrier.max()
        table.add_row(
            park,
            f"{energy.get('electricity', 0):,.0f}",
            f"{peak.get('electricity', 0):,.0f}",
            *(f"{energy.get(c, 0):,.0f}" for c in CARRIERS),
        )
    return table


def plans_table(plans: list[LevelPlan], title: str) -> Table:
    table = Table(title=title)
    for column in ("level", "site", "plan", "status", "method", "cost CNY", "baseline CNY",
                   "saving", "CO₂ kg", "baseline CO₂ kg", "seconds"):  # fmt: skip
        table.add_column(column, justify="right")
    for item in plans:
        record = item.record
        cost, co2 = record.objective_cny, record.co2_kg
        base_cost, base_co2 = record.baseline.get("cost_cny"), record.baseline.get("co2_kg")
        status = record.status if not record.error else f"{record.status}: {record.error[:80]}"
        table.add_row(
            record.level, record.site_id, str(record.id), status, item.method,
            _number(cost), _number(base_cost), _share(cost, base_cost), _number(co2),
            _number(base_co2), f"{item.seconds:.1f}",
        )  # fmt: skip
    return table


def actual_table(actuals: list[SiteActual], title: str) -> Table:
    """Energy and gas cost, peak import and CO₂ over the steps the scheduler controlled.

    The demand charge is left out: it is billed on a month's peak, which a day does not show.
    """
    table = Table(title=title)
    for column in ("site", "plans", "setpoints", "steps", "planned CNY", "actual CNY",
                   "baseline CNY", "saved CNY", "peak kW", "baseline peak kW", "CO₂ kg",
                   "baseline CO₂ kg"):  # fmt: skip
        table.add_column(column, justify="right")
    for site in actuals:
        planned, actual, baseline = (_energy(a) for a in (site.planned, site.actual, site.baseline))
        saved = baseline - actual if baseline is not None and actual is not None else None
        table.add_row(
            site.site_id, str(site.plans), str(site.setpoints), str(site.steps),
            _number(planned), _number(actual), _number(baseline), _number(saved),
            _number(site.actual.peak_import_kw if site.actual else None),
            _number(site.baseline.peak_import_kw if site.baseline else None),
            _number(site.actual.co2_kg if site.actual else None),
            _number(site.baseline.co2_kg if site.baseline else None),
        )  # fmt: skip
    return table


def ingest_table(figures: IngestFigures) -> Table:
    table = Table(title="ingest (MQTT → PostgreSQL)", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    rate = figures.burst_readings / figures.burst_s if figures.burst_s else 0.0
    table.add_row("messages received", f"{figures.messages:,.0f}")
    table.add_row("readings stored", f"{figures.readings:,.0f}")
    table.add_row("duplicates (already stored)", f"{figures.duplicates:,.0f}")
    table.add_row("rejected", f"{figures.rejected:,.0f}")
    table.add_row("history burst, end to end", f"{rate:,.0f} readings/s")
    return table


def _energy(account: Account | None) -> float | None:
    return account.energy_cny + account.gas_cny if account is not None else None


def _number(value: object) -> str:
    return f"{value:,.0f}" if isinstance(value, int | float) else "—"


def _share(value: object, baseline: object) -> str:
    if not isinstance(value, int | float) or not isinstance(baseline, int | float) or not baseline:
        return "—"
    return f"{(baseline - value) / baseline:.1%}"
