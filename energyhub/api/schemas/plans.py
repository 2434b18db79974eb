"""Plans: create (inputs in), the plan, its schedule, approval, plan vs actual."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, Field, field_validator, model_validator

from energyhub.api.schemas.common import Measure, Name, SiteId, Text, Time
from energyhub.bounds import step_seconds
from energyhub.plans.store import PlanStatus


class PlanInputsIn(BaseModel):
    """The `energyhub plan --inputs` table as columns: `ts` and `<id>:<quantity>` series."""

    ts: list[Time] = Field(min_length=2, description="Step start times, regular steps.")
    columns: dict[Name, list[Measure]] = Field(
        min_length=1,
        examples=[{"b01:electricity_kw": [800, 820], "b01-pv:available_kw": [0, 35]}],
    )

    @field_validator("ts")
    @classmethod
    def _steps(cls, ts: list[datetime]) -> list[datetime]:
        """Every step is one a plan can store (whole seconds, 1 s to a week)."""
        for row, (a, b) in enumerate(pairwise(ts), start=2):
            if b <= a:
                raise ValueError(f"row {row} is not after row {row - 1}")
            try:
                step_seconds((b - a).total_seconds())
            except ValueError as exc:
                raise ValueError(f"row {row}: {exc}") from None
        return ts

    @model_validator(mode="after")
    def _aligned(self) -> Self:
        for name, values in self.columns.items():
            if len(values) != len(self.ts):
                raise ValueError(f"column {name!r} has {len(values)} values for {len(self.ts)} ts")
        return self


class PlanCreate(BaseModel):
    level: Literal["building", "park"]
    site_id: SiteId
    inputs: PlanInputsIn
    time_limit_s: float | None = Field(default=None, gt=0, le=600)


class PlanReject(BaseModel):
    reason: Annotated[Text, Field(min_length=1)] = Field(
        examples=["the demand forecast misses the trade fair"]
    )


class PlanPublic(BaseModel):
    """A stored plan; `status` pending means the solve is still running."""

    id: int
    level: str
    site_id: str
    status: PlanStatus
    horizon_start: datetime
    horizon_end: datetime
    step_s: int
    objective_cny: float | None
    cost_cny: dict[str, float] = Field(description="Objective terms: energy, demand, gas, ...")
    co2_kg: float | None
    baseline_cost_cny: float | None
    baseline_co2_kg: float | None
    solver: dict[str, Any]
    inputs_hash: str | None
    warnings: list[str]
    error: str | None = Field(description="Why a failed plan failed.")
    created_by: str | None
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    activated_at: datetime | None
    rejected_by: str | None
    rejected_at: datetime | None
    rejected_reason: str | None
    superseded_by: int | None


class PlansPublic(BaseModel):
    plans: list[PlanPublic]
    next_cursor: int | None = Field(description="Pass as `before_id` for older plans.")


class ScheduleStepPublic(BaseModel):
    ts: datetime
    values: dict[str, float] = Field(examples=[{"b01-bess:charge_kw": 250.0}])


class SchedulePublic(BaseModel):
    plan_id: int
    step_s: int
    columns: list[str] = Field(description="`<asset>:<variable>` with units in the name.")
    steps: list[ScheduleStepPublic]


class SocPublic(BaseModel):
    asset_id: str
    planned_soc_pct: float | None
    actual_soc_pct: float | None


class ActualStepPublic(BaseModel):
    ts: datetime
    planned_import_kw: float | None
    actual_import_kw: float | None
    planned_pv_kw: float | None
    actual_pv_kw: float | None
    soc: list[SocPublic]


class PlanActualPublic(BaseModel):
    """Planned vs metered per step: import (the site's electricity meters), PV and battery SOC."""

    plan_id: int
    site_id: str
    step_s: int
    planned_import_kwh: float
    actual_import_kwh: float
    steps: list[ActualStepPublic]
