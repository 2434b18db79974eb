"""Forecasts: a site's forecast with its band (its newest plan's, or made now), and a backtest."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

BacktestStep = Literal["15m", "1h"]


class ForecastPointPublic(BaseModel):
    ts: datetime
    p50: float = Field(description="The median: what a plan is solved with.", examples=[812.5])
    p10: float | None = Field(description="Null where no band was measured.")
    p90: float | None


class ForecastSeriesPublic(BaseModel):
    name: str = Field(examples=["b01:electricity_kw"])
    method: str = Field(description="The model, and how it was chosen by backtest.")
    points: list[ForecastPointPublic]


ForecastSource = Literal["plan", "now"]


class ForecastPublic(BaseModel):
    """A site's forecast by column: the one its newest plan was solved with, or one made now."""

    site_id: str
    source: ForecastSource = Field(
        description="`plan`: the newest scheduler plan's forecast; `now`: made for this request "
        "from the stored meters, as a re-plan from the current step would make it."
    )
    plan_id: int | None = Field(description="The plan it was solved with (null for `now`).")
    plan_status: str | None
    issued_at: datetime = Field(description="The first step it forecasts from.")
    notes: list[str]
    band_coverage: dict[str, Any] = Field(
        description="Metered values of the last days inside the P10–P90 band earlier plans gave "
        "them: per column and in total (`inside`, `count`, `share`)."
    )
    series: list[ForecastSeriesPublic]


class ModelScorePublic(BaseModel):
    nmae: float | None = Field(description="Σ|error| / Σ|actual|; null without actual values.")
    mae_kw: float | None
    steps: int
    ratio_to_better_naive: float | None = Field(
        description="NMAE ÷ the better of naive 1d and naive 7d (below 1: better than naive)."
    )


class BandScorePublic(BaseModel):
    pinball_p10_kw: float | None
    pinball_p90_kw: float | None
    coverage: float | None = Field(description="Share of actual values inside P10–P90.")


class MeterBacktestPublic(BaseModel):
    meter: str
    origins: int = Field(description="Day-ahead forecasts made (one per local midnight).")
    better_naive: str | None
    models: dict[str, ModelScorePublic] = Field(
        description="`chosen` (the per-meter choice the scheduler makes), each candidate model, "
        "`naive 1d` and `naive 7d`."
    )
    band: BandScorePublic | None
    chosen: dict[str, int] = Field(description="How often each model was chosen.")
    notes: list[str]


class BacktestPublic(BaseModel):
    site_id: str
    step_s: int
    meters: list[MeterBacktestPublic]
    notes: list[str]
