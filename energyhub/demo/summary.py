"""The demo's tables: load per park, plans per level, plan vs actual, ingest; 80 columns wide."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from rich import box
from rich.table import Table

from energyhub.demo.live import SiteActual
from energyhub.demo.planning import LevelPlan
from energyhub.plans.actual import Account

CARRIERS = ("heat", "cooling", "gas", "pv")


@dataclass(frozen=True)
class IngestFigures:
    """What the ingest worker did: all of it, and the history burst on its own; what the
    simulator published, and how much of it never reached the worker."""

    published: int
    lost: int
    messages: float
    readings: float
    duplicates: float
    rejected: float
    burst_readings: float
    burst_s: float


def _table(title: str, *columns: str, labels: int = 1) -> Table:
    """A table whose first `labels` columns are text and the rest numbers."""
    table = Table(title=title, box=box.SIMPLE_HEAD, collapse_padding=True, title_style="bold")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i < labels else "right")
    return table


def load_table(frames: dict[str, pd.DataFrame], title: str) -> Table:
    """Energy and peak per carrier of each park, from its hourly series."""
    table = _table(title, "park", "electricity MWh", "peak kW", "heat MWh", "cooling MWh",
                   "gas MWh", "PV MWh")  # fmt: skip
    for park, frame in frames.items():
        by_carrier = frame.groupby("carrier")["power_kw"]
        mwh = by_carrier.sum() / 1000  # hourly means: kW · 1 h
        peak = by_carrier.max()
        table.add_row(
            park,
            f"{mwh.get('electricity', 0):,.1f}",
            f"{peak.get('electricity', 0):,.0f}",
            *(f"{mwh.get(c, 0):,.1f}" for c in CARRIERS),
        )
    return table


def plans_table(plans: list[LevelPlan], title: str) -> Table:
    """Each plan's cost and CO₂ against the rule-based baseline of the same forecast."""
    table = _table(title, "level", "site", "status", "cost CNY", "vs baseline", "CO₂ t",
                   "vs baseline", "solve s", labels=3)  # fmt: skip
    for item in plans:
        record = item.record
        cost, co2 = record.objective_cny, record.co2_kg
        base_cost, base_co2 = record.baseline.get("cost_cny"), record.baseline.get("co2_kg")
        status = record.status if not record.error else f"{record.status}: {record.error[:80]}"
        table.add_row(
            record.level, record.site_id, status, _number(cost), _relative(cost, base_cost),
            _tonnes(co2), _relative(co2, base_co2),
            f"{item.seconds:.1f}",
        )  # fmt: skip
    return table


def actual_table(actuals: list[SiteActual], title: str) -> Table:
    """Energy and gas cost, peak import and CO₂ over the steps the scheduler controlled, and the
    setpoints it sent. The demand charge is left out: it is billed on a month's peak."""
    table = _table(title, "site", "steps", "planned CNY", "actual CNY", "baseline CNY",
                   "peak kW", "baseline peak", "CO₂ saved t")  # fmt: skip
    table.caption = "energy and gas cost; setpoints sent: " + ", ".join(
        f"{site.site_id} {site.setpoints:,} ({site.plans} plans)" for site in actuals
    )
    for site in actuals:
        planned, actual, baseline = (_energy(a) for a in (site.planned, site.actual, site.baseline))
        saved_co2 = (
            site.baseline.co2_kg - site.actual.co2_kg if site.baseline and site.actual else None
        )
        table.add_row(
            site.site_id, str(site.steps), _number(planned),
            _number(actual), _number(baseline),
            _number(site.actual.peak_import_kw if site.actual else None),
            _number(site.baseline.peak_import_kw if site.baseline else None), _tonnes(saved_co2),
        )  # fmt: skip
    return table


def ingest_table(figures: IngestFigures) -> Table:
    table = _table("ingest (MQTT → PostgreSQL)", "figure", "value")
    table.show_header = False
    rate = figures.burst_readings / figures.burst_s if figures.burst_s else 0.0
    table.add_row("messages published (park, scheduler)", f"{figures.published:,}")
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


def _tonnes(kg: object) -> str:
    return f"{kg / 1000:,.1f}" if isinstance(kg, int | float) else "—"


def _relative(value: object, baseline: object) -> str:
    """How far `value` lies above (+) or below (−) the baseline, as a share of it."""
    if not isinstance(value, int | float) or not isinstance(baseline, int | float) or not baseline:
        return "—"
    return f"{(value - baseline) / baseline:+.1%}"
