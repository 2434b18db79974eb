"""The demo's tables: load per park, plans per level, plan vs actual, ingest; 80 columns wide."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from rich import box
from rich.table import Table

from energyhub.demo.actuals import SiteActual
from energyhub.demo.planning import LevelPlan
from energyhub.numbers import figure, percent
from energyhub.plans.verdict import grouped_warnings

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
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        title_style="bold",
        caption_justify="left",
    )
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i < labels else "right")
    return table


def load_table(frames: dict[str, pd.DataFrame], title: str, unmetered: str | None = None) -> Table:
    """Energy and peak per carrier of each park, from its hourly series. The peak is the highest
    hour's mean: below the highest 15-minute mean that a demand charge bills (plan vs actual).
    `unmetered`: the sites no electricity meter measures (sites.unmetered_note), said under it."""
    table = _table(title, "park", "electricity MWh", "peak kW (1 h)", "heat MWh", "cooling MWh",
                   "gas MWh", "PV MWh")  # fmt: skip
    table.caption = "peak kW (1 h): the highest hour's mean; the billed peak is per 15 minutes"
    if unmetered:
        table.caption += "\n" + unmetered
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


EXPLAINED = (
    "metered: the bill of what the meters show (energy, demand charge on the rise above the "
    "month-to-date peak, gas, carbon price; heat or cooling left unserved priced as the "
    "counterfactual prices its own)",
    "counterfactual: the rule-based baseline re-run on the metered demand and PV — the bill "
    "without the plans",
    "saved: counterfactual − (metered − the value of what the meters left in storage), what "
    "the plans realized (CO₂ the same way)",
    "foresight: counterfactual − the plan re-solved on the metered demand, the most any plan "
    "could have saved",
    "capture: saved ÷ foresight, a share in [0, 1]; — where foresight saves under 1 % of the "
    "counterfactual or the plans lost (the loss is the negative saved figure)",
)


def actual_table(actuals: list[SiteActual], title: str, unmetered: str | None = None) -> Table:
    """Over the steps the scheduler controlled: the metered bill against the counterfactual, the
    realized and perfect-foresight savings, the capture ratio; one line explains each figure, and
    `unmetered` why a site's are missing."""
    table = _table(title, "site", "steps", "metered CNY", "counterfactual", "saved CNY",
                   "foresight CNY", "capture", "CO₂ saved t")  # fmt: skip
    sent = "setpoints sent: " + ", ".join(
        f"{site.site_id} {site.setpoints:,} ({site.plans} plans)" for site in actuals
    )
    table.caption = "\n".join((*EXPLAINED, sent, *([unmetered] if unmetered else [])))
    for site in actuals:
        found = site.realized
        table.add_row(
            site.site_id, str(site.steps),
            _number(found.metered_cny if found else None),
            _number(found.counterfactual_cny if found else None),
            _number(found.savings_cny if found else None),
            _number(found.perfect_savings_cny if found else None),
            found.capture_text if found else "—",
            _tonnes(found.savings_co2_kg if found else None),
        )  # fmt: skip
    notes = [n for site in actuals if site.realized for n in site.realized.notes]
    if notes:
        table.caption += "\n" + "\n".join(grouped_notes(notes))
    return table


def grouped_notes(notes: list[str]) -> list[str]:
    """One line per kind of note (plans.verdict.grouped_warnings), its first text in full and the
    other subjects of the kind after it: every kind is shown, so that the note saying why a
    figure is missing (a perfect-foresight re-solve that failed) is not cut behind a repeated
    one (a meter missing at seven buildings)."""
    lines = []
    for group in grouped_warnings(notes):
        others = [s for s in group.subjects if s not in group.texts[0].split(": ", 1)[0]]
        lines.append(group.texts[0] + (f" (also {', '.join(others)})" if others else ""))
    return lines


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


def _number(value: object) -> str:
    return figure(value, 0) if isinstance(value, int | float) else "—"


def _tonnes(kg: object) -> str:
    return figure(kg / 1000) if isinstance(kg, int | float) else "—"


def _relative(value: object, baseline: object) -> str:
    """How far `value` lies above (+) or below (−) the baseline, as a share of it."""
    if not isinstance(value, int | float) or not isinstance(baseline, int | float) or not baseline:
        return "—"
    return percent((value - baseline) / abs(baseline))
