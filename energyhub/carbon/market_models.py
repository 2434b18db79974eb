"""Market-based Scope 2 as reports show it, beside the location-based figure (GHG Protocol)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstrumentUse(_Out):
    """One retirement (certificates) or claim (contract) and what it covered in the period."""

    retirement_id: int
    instrument_id: int
    kind: Literal["certificate", "contract"]
    site_id: str
    registry: str
    project: str
    technology: str
    location: str
    vintage: int
    serials: str | None = Field(description="first-last, inclusive; contracts have none.")
    period: str
    period_start: datetime
    period_end: datetime
    mwh: float = Field(description="MWh retired or claimed for its whole period.")
    in_period_kwh: float = Field(description="Its share of the report's period, by time.")
    applied_kwh: float = Field(description="What it covered, at most the electricity bought.")
    kg_per_kwh: float
    kg: float


class LineScope2(_Out):
    """One line of the report (building, park, tenant, common share) both ways; the lines add
    up to the report's figures."""

    site_id: str
    kind: str
    location_kg: float
    market_kg: float
    market_electricity_kg: float
    electricity_kwh: float = Field(
        description="Electricity the line bought; below 0 where it net supplies the others."
    )
    certificate_kwh: float
    contract_kwh: float
    contract_kg: float
    residual_kwh: float
    unapplied_kwh: float = Field(description="Its instruments beyond its electricity bought.")


class MarketScope2(_Out):
    """Scope 2 both ways: location-based (grid factors) and market-based (instruments first,
    the rest at the residual mix). Heat is the same in both."""

    location_kg: float
    market_kg: float
    location_electricity_kg: float
    market_electricity_kg: float
    heat_kg: float
    cooling_kg: float = Field(default=0.0, description="Bought cooling, the same both ways.")
    electricity_kwh: float = Field(description="Electricity bought, the sum of the lines'.")
    certificate_kwh: float
    contract_kwh: float
    contract_kg: float
    residual_kwh: float
    residual_mix_kg_per_kwh: float
    residual_mix_source: str
    unapplied_kwh: float = Field(description="Instruments beyond the electricity bought.")
    instruments: list[InstrumentUse]
    lines: list[LineScope2] = Field(
        default_factory=list, description="The report's lines, each both ways (carbon/market.py)."
    )
