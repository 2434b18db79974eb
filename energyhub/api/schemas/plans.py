"""Plans: create (inputs in), the plan, its schedule, approval, plan vs actual."""

from __future__ import annotations

from datetime import date, datetime
from itertools import pairwise
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from energyhub.api.schemas.common import Measure, Name, SiteId, Text, Time
from energyhub.bounds import Finite, Whole, step_seconds
from energyhub.plans.store import PlanStatus


class PlanInputsIn(BaseModel):
    """The `energyhub plan --inputs` table as columns: `ts` and `<id>:<quantity>` series."""

    model_config = ConfigDict(extra="forbid")

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
    """A plan asked for; a key it does not know (`frontier_points`) is refused, not ignored."""

    model_config = ConfigDict(extra="forbid")

    level: Literal["building", "park"]
    site_id: SiteId
    inputs: PlanInputsIn
    time_limit_s: Finite | None = Field(default=None, gt=0, le=600)
    frontier: Whole | None = Field(
        default=None,
        ge=2,
        le=11,
        description="Also solve this many points from the cost-optimal to the CO₂-optimal plan "
        "(ε-constraint on CO₂); the plan is the cost-optimal one, or the point the site's "
        "carbon.plan_policy picks; an operator may pick another (POST /plans/{id}/frontier/{k}).",
    )


class PlanReject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[Text, Field(min_length=1)] = Field(
        examples=["the demand forecast misses the trade fair"]
    )


class VsBaselinePublic(BaseModel):
    """The plan against its baseline: Δ = plan − baseline, and why it is worse if it is."""

    delta_cost_cny: float
    delta_cost_pct: float | None
    delta_co2_kg: float
    delta_co2_pct: float | None
    cost_worse_because: str | None
    co2_worse_because: str | None


class FrontierPointPublic(BaseModel):
    """A point of the cost–CO₂ frontier: its CO₂ cap, CO₂, bill (without the carbon price),
    objective, and the marginal abatement cost from the previous point."""

    index: int
    cap_kg: float | None
    co2_kg: float
    cost_cny: float
    objective_cny: float
    abatement_cny_per_t: float | None


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
    vs_baseline: VsBaselinePublic | None = Field(
        description="Plan − baseline (negative saves); absent until solved."
    )
    month_peak_kw: dict[str, float] = Field(
        description="Month-to-date peak import each connection started from (monthly demand "
        "billing: the demand charge is paid only on raising it)."
    )
    frontier: list[FrontierPointPublic] = Field(
        description="The cost–CO₂ frontier, if the plan was made with one."
    )
    frontier_point: int | None = Field(description="Which frontier point this plan is.")
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
    """A storage's state of charge at the end of the step, planned and metered."""

    asset_id: str
    planned_soc_pct: float | None
    actual_soc_pct: float | None
    planned_kwh: float | None
    actual_kwh: float | None


class ActualStepPublic(BaseModel):
    ts: datetime
    controlled: bool = Field(description="A setpoint of this plan was sent for the step.")
    import_price_cny_per_kwh: float
    planned_import_kw: float | None = Field(description="Planned net import (import − export).")
    actual_import_kw: float | None = Field(description="Metered net import.")
    baseline_import_kw: float | None = Field(description="Metered import with storage idle.")
    planned_pv_kw: float | None
    actual_pv_kw: float | None
    planned_gas_kw: float | None = Field(default=None, description="Planned gas draw.")
    actual_gas_kw: float | None = Field(default=None, description="Metered gas draw.")
    soc: list[SocPublic]
    coverage: dict[str, float] = Field(
        description="Per metered carrier (electricity, pv, gas): the share of the step its "
        "meters' readings cover, 0–1 (docs/meter-data.md)."
    )


class CoveragePublic(BaseModel):
    """How much of the compared time the metered data covers: covered meter-seconds ÷ (meters ×
    compared seconds). The compared time is the basis's steps from the first compared step to
    the last; a step in it without any reading counts as uncovered. The bill is not rescaled."""

    share: float | None = Field(
        description="All compared carriers' meters together, 0–1; null with no compared step."
    )
    by_carrier: dict[str, float] = Field(description="Each metered carrier's share, 0–1.")
    note: str | None = Field(
        description="One line when the share is below 100 % ('metered data covers 87 % of the "
        "compared time (…)'); null otherwise."
    )


class AccountPublic(BaseModel):
    """Energy, cost and CO₂ over the compared steps, billed as the site is."""

    import_kwh: float
    export_kwh: float
    peak_import_kw: float
    month_peak_kw: float = Field(description="Month-to-date peak the steps start from.")
    gas_kwh: float
    energy_cny: float
    demand_cny: float = Field(description="Demand charge on the rise above month_peak_kw.")
    gas_cny: float
    carbon_cny: float
    total_cny: float
    co2_kg: float


class ComparisonPublic(BaseModel):
    compared_steps: int
    planned: AccountPublic
    actual: AccountPublic
    baseline: AccountPublic
    savings_cny: float = Field(description="Baseline minus actual cost.")
    savings_co2_kg: float = Field(description="Baseline minus actual CO₂.")
    stored_change_kwh: float


class SidePublic(BaseModel):
    """One side of the realized comparison over the compared steps, by term."""

    energy_cny: float
    demand_cny: float = Field(description="On the rise above the month-to-date peak.")
    gas_cny: float
    carbon_cny: float
    unserved_cny: float = Field(description="Demand the rules could not serve, priced.")
    co2_kg: float
    stored_kwh: float = Field(description="Storage SOC change: > 0 left in, < 0 taken.")
    stored_cny: float = Field(description="Its value, a credit against the bill.")
    stored_kg: float


class RealizedPublic(BaseModel):
    """What the plans saved against the counterfactual (the rule-based baseline re-run on the
    metered demand and PV), and what perfect foresight (the plan re-solved on the metered demand)
    could have saved."""

    steps: int
    counterfactual_cny: float
    counterfactual_co2_kg: float
    metered_cny: float
    metered_co2_kg: float
    stored_value_cny: float = Field(
        description="Value of the energy the metered steps left in (> 0) or took from storage."
    )
    savings_cny: float = Field(description="Counterfactual − (metered − stored value).")
    savings_co2_kg: float = Field(
        description="Counterfactual − metered CO₂, each less what it left in storage."
    )
    perfect_foresight_cny: float | None
    perfect_foresight_co2_kg: float | None
    perfect_savings_cny: float | None = Field(
        description="Counterfactual − (perfect foresight − its stored value)."
    )
    capture_ratio: float | None = Field(
        description="savings_cny ÷ perfect_savings_cny, a share in [0, 1]; null where it means "
        "nothing (capture_note says why: docs/billing-and-savings.md)."
    )
    capture_note: str | None = Field(
        default=None,
        description="Why capture_ratio is null: no re-solve, foresight saves nothing or less "
        "than 1 % of the counterfactual's bill, a loss (savings_cny < 0), or foresight worse "
        "than the plans.",
    )
    breakdown: dict[str, SidePublic] = Field(
        description="Each side's terms: counterfactual, metered, perfect_foresight (if solved)."
    )
    notes: list[str]


class DaySavingsPublic(ComparisonPublic):
    day: date = Field(description="Local date of the site.")
    realized: RealizedPublic | None


class SetpointOverridePublic(BaseModel):
    """A step where the device was told other than the plan asked (the peak guard)."""

    ts: datetime
    asset_id: str
    planned_p_kw: float
    p_kw: float
    reason: str


class GasComparisonPublic(BaseModel):
    """Planned vs metered gas over the steps the gas meters read (see PlanActualPublic.gas)."""

    steps: int
    planned_kwh: float
    actual_kwh: float
    planned_cny: float
    actual_cny: float
    planned_co2_kg: float
    actual_co2_kg: float


class PlanActualPublic(ComparisonPublic):
    """A plan against the meters: accounts over the steps it controlled (or, if none, every
    metered step), per local day, and per step (import, PV, storage SOC at the step's end)."""

    plan_id: int
    site_id: str
    level: str
    status: str
    step_s: int
    basis: Literal["controlled", "metered"]
    planned_savings_cny: float | None
    planned_savings_co2_kg: float | None
    realized: RealizedPublic | None
    planned_import_kwh: float = Field(description="Planned net import over the whole horizon.")
    actual_import_kwh: float = Field(description="Metered net import over the whole horizon.")
    days: list[DaySavingsPublic]
    steps: list[ActualStepPublic]
    coverage: CoveragePublic
    overrides: list[SetpointOverridePublic] = Field(
        default_factory=list,
        description="Setpoints the scheduler's peak guard sent other than the plan asked, and why.",
    )
    unmetered: str | None = Field(
        default=None,
        description="Sites of the plan's scope that no electricity meter measures: the import "
        "there is unknown, so no step is compared.",
    )
    gas: GasComparisonPublic | None = Field(
        default=None,
        description="Planned vs metered gas (kWh, CNY, CO₂) over the basis's steps the gas "
        "meters read, also where the import is not measured (a gas-only site); null: none.",
    )


class SavingsPublic(BaseModel):
    """A site's realized savings per local day over the steps its plans controlled."""

    site_id: str
    start: datetime
    end: datetime
    days: list[DaySavingsPublic]
    realized: RealizedPublic | None = Field(description="The days summed (None if any has none).")
    unmetered: str | None = Field(
        default=None,
        description="Sites under this one that no electricity meter measures: their plans' steps "
        "are not compared, so no savings are realized there.",
    )
