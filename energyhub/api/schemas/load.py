"""Load: power per carrier over a site's subtree."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Step = Literal["1m", "5m", "15m", "1h", "1d"]
LOAD_COLUMNS = ("electricity_kw", "heat_kw", "cooling_kw", "gas_kw", "pv_kw")


class LoadPointPublic(BaseModel):
    """Average power over one step starting at `ts`: the mean of the samples present, so a
    partly covered step is not diluted (its energy is in `energy_kwh`, over covered time only);
    null where no meter of the carrier reported."""

    ts: datetime
    electricity_kw: float | None = Field(examples=[2310.5])
    heat_kw: float | None
    cooling_kw: float | None
    gas_kw: float | None
    pv_kw: float | None = Field(description="PV generation (not netted out of electricity).")


class LoadPublic(BaseModel):
    site_id: str
    step: Step
    start: datetime
    end: datetime
    energy_kwh: dict[str, float] = Field(
        description="Energy per carrier over the window: each reading's step, only the time "
        "readings cover (docs/meter-data.md); the same at every step.",
        examples=[{"electricity": 55_452.0, "pv": 1_210.5}],
    )
    coverage: float = Field(
        ge=0,
        le=1,
        description="Share of the window's meter-time the readings cover (all load meters).",
    )
    points: list[LoadPointPublic]
