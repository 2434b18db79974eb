"""The carbon report as the API returns it and the CLI prints it: units in every field name."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from energyhub.carbon.market_models import MarketScope2
from energyhub.sites import SiteKind


class Out(BaseModel):
    """Output models are frozen and reject unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EnergyKwh(Out):
    """Energy by carrier; electricity is what the site bought: its draw less park generation,
    step by step, and never below 0 in a step (an export is `exported_kwh`, not less bought)."""

    electricity: float
    heat: float
    cooling: float
    gas: float

    @classmethod
    def of(cls, totals: pd.Series) -> EnergyKwh:
        return cls(
            electricity=float(totals["electricity_kwh"]),
            heat=float(totals["heat_kwh"]),
            cooling=float(totals["cooling_kwh"]),
            gas=float(totals["gas_kwh"]),
        )


class CostCny(Out):
    """Cost by term: electricity bought at the site's TOU tariff, electricity exported credited
    at the connection's export price, gas at its park's price, bought heat and cooling at their
    declared prices, carbon."""

    electricity: float
    export_credit: float = Field(
        default=0.0,
        description="Exported electricity at grid.export_price_cny_per_kwh, credited (≤ 0).",
    )
    gas: float
    heat: float = Field(default=0.0, description="Bought heat at heat_price_cny_per_kwh.")
    cooling: float = Field(default=0.0, description="Bought cooling at cooling_price_cny_per_kwh.")
    carbon: float
    total: float

    @classmethod
    def of(cls, totals: pd.Series) -> CostCny:
        names = ("electricity", "export_credit", "gas", "heat", "cooling", "carbon")
        terms = {name: float(totals[f"{name}_cny"]) for name in names}
        return cls(**terms, total=sum(terms.values()))


class Line(Out):
    """One part of the site: a building of a park, a park of a city, a tenant of a building."""

    site_id: str
    kind: Literal["building", "park", "park-own", "tenant", "common"]
    floor_area_m2: float | None
    energy_kwh: EnergyKwh
    exported_kwh: float = Field(
        default=0.0,
        description="Electricity the line's own meters sent out in their net export steps (a "
        "building's at its own meter); on a park's own line the park's export less its "
        "buildings', below 0 where other buildings used a building's export.",
    )
    pv_kwh: float
    scope1_kg: float
    scope2_kg: float
    scope2_electricity_kg: float = Field(default=0.0, description="Location-based, electricity.")
    scope2_market_kg: float | None = Field(
        default=None, description="Market-based Scope 2 of the line (carbon/market.py)."
    )
    total_kg: float
    avoided_kg: float
    cost_cny: CostCny
    metered_kg: float | None = Field(default=None, description="Tenant: from its sub-meters.")
    allocated_kg: float | None = Field(
        default=None, description="Tenant or common: share of the building's remainder."
    )
    area_share: float | None = None


class Day(Out):
    """One local day of the period."""

    day: date
    scope1_kg: float
    scope2_electricity_kg: float
    scope2_heat_kg: float
    scope2_cooling_kg: float = 0.0
    electricity_kwh: float
    exported_kwh: float = 0.0
    heat_kwh: float
    gas_kwh: float
    pv_kwh: float


class FactorsUsed(Out):
    """The factors of the reported site (sub-sites may override; see notes) and their sources."""

    grid_kg_per_kwh: float
    gas_kg_per_kwh: float
    heat_kg_per_kwh: float
    cooling_kg_per_kwh: float = 0.0
    price_cny_per_t: float
    factor_year: int | None
    grid_series: str | None
    grid_series_share: float = Field(description="Share of electricity priced by the series.")
    sources: dict[str, str]


class Gap(Out):
    start: datetime
    end: datetime
    intervals: int


class MeterCoverage(Out):
    """A meter with missing intervals; a counter's energy across a gap is still measured."""

    meter: str
    counter: bool
    share: float
    missing_intervals: int
    longest_gaps: list[Gap]


class Coverage(Out):
    """Share of the expected intervals that have data; missing ones are not filled in.

    `time_share` is the share of the meters' time the readings cover (docs/meter-data.md): the
    energy figures count that time only."""

    share: float
    time_share: float = 0.0
    expected_intervals: int
    present_intervals: int
    interval_minutes: int
    meters: int
    incomplete: list[MeterCoverage]


class Trend(Out):
    """The period against the one before it, of the same length."""

    previous_start: datetime
    previous_end: datetime
    previous_total_kg: float | None
    change_kg: float | None
    change_pct: float | None
    previous_coverage: float
    comparable: bool = True
    """False when the two periods' coverage differs materially: the change is then withheld."""


class TargetPosition(Out):
    """Yearly target or allowance against emissions to date and projected to year end."""

    year: int
    target_kg_per_year: float
    to_date_end: datetime
    emissions_to_date_kg: float
    position_to_date_kg: float = Field(description="Target minus emissions to date.")
    projected_year_kg: float
    position_projected_kg: float = Field(description="Target minus projected year emissions.")
    price_cny_per_t: float
    position_to_date_cny: float
    position_projected_cny: float
    exceeds_target: bool
    method: str


class CarbonReport(Out):
    """Energy, Scope 1 and 2 emissions, PV, intensity, trend, coverage and target of one site."""

    site_id: str
    site_name: str | None
    kind: SiteKind
    start: datetime
    end: datetime
    timezone: str
    energy_kwh: EnergyKwh
    exported_kwh: float = Field(
        default=0.0,
        description="Electricity sent to the grid in steps of net export: reported on its own, "
        "never subtracted from what was bought or from Scope 2.",
    )
    generation_kwh: float = Field(description="Electricity from CHP, fuel cells and wind.")
    pv_kwh: float
    avoided_kg: float = Field(description="PV × grid factor: reported, never subtracted.")
    scope1_kg: float
    scope2_kg: float
    scope2_electricity_kg: float
    scope2_heat_kg: float
    scope2_cooling_kg: float = Field(
        default=0.0, description="Bought district cooling (`cooling_purchased`)."
    )
    total_kg: float
    floor_area_m2: float | None
    intensity_kg_per_m2: float | None
    cost_cny: CostCny
    factors: FactorsUsed
    trend: Trend
    coverage: Coverage
    lines: list[Line]
    daily: list[Day]
    target: TargetPosition | None
    notes: list[str]
    scope2_market: MarketScope2 | None = Field(
        default=None, description="Scope 2 market-based beside location-based (`scope2_kg`)."
    )
