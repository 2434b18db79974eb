"""Load: power per carrier over a site's subtree."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Step = Literal["1m", "5m", "15m", "1h", "1d"]
LOAD_COLUMNS = ("electricity_kw", "heat_kw", "cooling_kw", "gas_kw", "pv_kw")


class LoadPointPublic(BaseModel):
    """Average power over one step starting at `ts`; null where no meter of the carrier reported."""

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
    points: list[LoadPointPublic]
