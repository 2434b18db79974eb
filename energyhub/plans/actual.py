"""Plan vs actual: per step planned vs metered import, PV and storage SOC; cost and CO₂ realized
vs planned vs baseline; realized savings of the plan, per day. The one definition the API, the
pages, the CLI and the demo use (a site's savings over many plans: energyhub.plans.days).

- The series (metered import, PV, SOC at the end of each step, the storage-idle import) are read
  as energyhub.plans.metered says; the bill as energyhub.plans.bill says (the demand charge on the
  rise above the month-to-date peak under monthly billing).
- A city plan is compared park by park (each park its own connection) and the accounts summed.
- A plan's figures cover the steps it controlled (a setpoint of it was sent); a plan that never
  controlled a step (a draft, or no controllable asset) is compared over every metered step.
- Every answer carries its coverage (docs/meter-data.md): per step and carrier, and over the
  compared steps, the share of the meters' time their readings cover, with one line saying so
  when it is below 100 %. The bill is computed as before; the coverage says how far to trust it.
"""

from __future__ import annotations

__all__ = ["PlanVsActual", "plan_vs_actual"]

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd
from psycopg import AsyncConnection
from pydantic import BaseModel, Field

from energyhub.plans.bill import ACCOUNT_COLUMNS
from energyhub.plans.comparison import (
    KINDS,
    Comparison,
    DaySavings,
    GasComparison,
    Part,
    compare_parts,
    gas_comparison,
)
from energyhub.plans.coverage import Coverage, coverage_of, covered_seconds, share_of
from energyhub.plans.days import Sources, days_of_parts, month_lead_in, over_days
from energyhub.plans.errors import PlanStateError
from energyhub.plans.metered import Storage, storages
from energyhub.plans.operations import plan_inputs
from energyhub.plans.parts import plan_parts
from energyhub.plans.realized import Realized
from energyhub.plans.store import (
    WITH_SCHEDULE,
    PlanRecord,
    SetpointOverride,
    get_plan,
    setpoint_overrides,
)
from energyhub.scheduler.target import DemandTargetConfig
from energyhub.sites import SiteFile, unmetered_note
from energyhub.store.db import Backend


class SocStep(BaseModel):
    """A storage's state of charge at the end of a step: planned and metered."""

    asset_id: str
    planned_kwh: float | None
    actual_kwh: float | None
    planned_soc_pct: float | None
    actual_soc_pct: float | None


class StepActual(BaseModel):
    """One step: planned, metered and baseline (storage idle) net import; PV; SOC at its end."""

    ts: datetime
    controlled: bool = Field(description="A setpoint of this plan was sent for the step.")
    import_price_cny_per_kwh: float
    planned_import_kw: float | None
    actual_import_kw: float | None
    baseline_import_kw: float | None
    planned_pv_kw: float | None
    actual_pv_kw: float | None
    planned_gas_kw: float | None = None
    actual_gas_kw: float | None = None
    import_limit_kw: float | None = Field(
        default=None,
        description="The import the step's setpoints told the site's local controller to hold "
        "the connection under (the scheduler's import limit); None: no limit was sent.",
    )
    soc: list[SocStep]
    coverage: dict[str, float] = Field(
        default_factory=dict,
        description="Per metered carrier (electricity, pv, gas): the share of the step its "
        "meters' readings cover, 0–1.",
    )


class PlanVsActual(Comparison):
    """A plan against the meters: totals, per day, per step."""

    plan_id: int
    site_id: str
    level: str
    status: str
    step_s: int
    basis: str = Field(description="`controlled` steps, or `metered` ones if it controlled none.")
    planned_savings_cny: float | None = Field(
        description="The plan's own expectation over its whole horizon (baseline − objective)."
    )
    planned_savings_co2_kg: float | None
    realized: Realized | None = Field(
        description="Counterfactual (rules on metered demand), realized savings, perfect "
        "foresight and capture ratio over the compared steps; None without two metered steps."
    )
    days: list[DaySavings]
    step_details: list[StepActual]
    coverage: Coverage
    overrides: list[SetpointOverride] = Field(
        default_factory=list,
        description="Setpoints the scheduler's peak guard sent other than the plan asked, with "
        "why (the metered import ran above plan towards the billed peak).",
    )
    unmetered: str | None = Field(
        default=None,
        description="Which sites of the plan's scope no electricity meter measures: the import "
        "there is unknown, so no step is compared.",
    )
    gas: GasComparison | None = Field(
        default=None,
        description="Planned vs metered gas over the basis's steps every connection's gas meters "
        "read (also where the import is not measured); None: no such step.",
    )


def _number(value: object) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return number if np.isfinite(number) else None


def _soc_step(asset: Storage, row: pd.Series) -> SocStep:
    planned = _number(row[f"planned_soc_kwh:{asset.id}"])
    actual = _number(row[f"actual_soc_kwh:{asset.id}"])
    return SocStep(
        asset_id=asset.id,
        planned_kwh=planned,
        actual_kwh=actual,
        planned_soc_pct=None if planned is None else planned / asset.energy_kwh * 100,
        actual_soc_pct=None if actual is None else actual / asset.energy_kwh * 100,
    )


SUMMED = (
    "planned_import_kw", "actual_import_kw", "baseline_import_kw", "planned_pv_kw",
    "actual_pv_kw", "planned_gas_kw", "actual_gas_kw", "import_limit_kw",
)  # fmt: skip


def _details(parts: Sequence[Part], step_s: float) -> list[StepActual]:
    """Per step, the connections' series summed (a step unknown on any connection is unknown),
    and each carrier's coverage of it."""
    first = parts[0][1]
    covered = covered_seconds(parts, step_s)
    summed = {c: sum((f[c] for _, f in parts), pd.Series(0.0, index=first.index)) for c in SUMMED}
    controlled = np.logical_or.reduce([f["controlled"].to_numpy() for _, f in parts])
    assets = [(a, f) for s, f in parts for a in storages(s)]
    steps = []
    for i, ts in enumerate(first.index):
        steps.append(
            StepActual(
                ts=pd.Timestamp(ts).to_pydatetime(),
                controlled=bool(controlled[i]),
                import_price_cny_per_kwh=float(first["p_import"].iloc[i]),
                soc=[_soc_step(a, f.iloc[i]) for a, f in assets],
                coverage={
                    c: share_of(float(kept.iloc[i]), float(whole.iloc[i]))
                    for c, (kept, whole) in covered.items()
                    if whole.iloc[i] > 0
                },
                **{c: _number(summed[c].iloc[i]) for c in SUMMED},
            )
        )
    return steps


def _compared_steps(frame: pd.DataFrame, basis: str) -> pd.DataFrame:
    metered = frame[frame["actual_import_kw"].notna() & frame["baseline_import_kw"].notna()]
    used = metered[metered["controlled"]] if basis == "controlled" else metered
    return used if len(used) else pd.DataFrame(columns=list(ACCOUNT_COLUMNS), dtype="float64")


def _spanned_steps(frame: pd.DataFrame, used: pd.DataFrame, basis: str) -> pd.DataFrame:
    """The steps of the basis from the first compared step to the last: the compared time, in
    which a step without any metered data counts as uncovered rather than vanishing."""
    if not len(used):
        return frame.iloc[:0]
    inside = (frame.index >= used.index[0]) & (frame.index <= used.index[-1])
    if basis == "controlled":
        inside = inside & frame["controlled"].to_numpy(dtype=bool)
    spanned: pd.DataFrame = frame.loc[inside]
    return spanned


def _basis(parts: Sequence[Part]) -> str:
    for _, frame in parts:
        metered = frame["actual_import_kw"].notna() & frame["baseline_import_kw"].notna()
        if (metered & frame["controlled"]).any():
            return "controlled"
    return "metered"


async def plan_vs_actual(
    conn: AsyncConnection,
    backend: Backend,
    plan_id: int,
    *,
    site: SiteFile,
    foresight: bool = True,
    target: DemandTargetConfig | None = None,
) -> PlanVsActual:
    """A stored plan against the stored readings (PlanNotFoundError if there is no such plan,
    PlanStateError if it has no schedule: pending or failed);
    `foresight` False skips the perfect-foresight re-solve; `target`: the scheduler's
    demand-target settings, which its target follows (default: their defaults)."""
    record = await get_plan(conn, plan_id)
    if record.status not in WITH_SCHEDULE:  # nothing was planned: "planned 0.0 CNY" misled
        raise PlanStateError(record.id, record.status, "compare", list(WITH_SCHEDULE))
    parts, peaks = await plan_parts(conn, backend, record, site)
    dt_h = record.step_s / 3600
    basis = _basis(parts)
    used = [(scope, _compared_steps(frame, basis)) for scope, frame in parts]
    spanned = [(s, _spanned_steps(f, u, basis)) for (s, f), (_, u) in zip(parts, used, strict=True)]
    used = [(scope, frame) for scope, frame in used if len(frame)]
    sources = Sources(
        conn, backend, site, await plan_inputs(conn, record.id), foresight,
        target=target or DemandTargetConfig(),
    )  # fmt: skip
    first = min((f.index[0] for _, f in used), default=None)
    carry = {} if first is None else await month_lead_in(conn, backend, site, record.site_id, first)
    starts = {s.grid_node: dict.fromkeys(KINDS, peaks.get(s.grid_node, 0.0)) for s, _ in used}
    starts.update({node: dict(state.kinds) for node, state in carry.items()})
    days = await days_of_parts(used, dt_h, peaks, sources, carry=carry)
    baseline = record.baseline.get("cost_cny")
    return PlanVsActual(
        plan_id=record.id,
        site_id=record.site_id,
        level=record.level,
        status=record.status,
        step_s=record.step_s,
        basis=basis,
        planned_savings_cny=None
        if baseline is None or record.objective_cny is None
        else float(baseline) - record.objective_cny,
        planned_savings_co2_kg=_savings_co2(record),
        realized=over_days(days),
        days=days,
        step_details=_details(parts, record.step_s) if parts else [],
        coverage=coverage_of([(s, f) for s, f in spanned if len(f)], record.step_s),
        overrides=await setpoint_overrides(conn, record.id),
        unmetered=unmetered_note(site.unmetered_electricity(record.site_id)),
        gas=gas_comparison(parts, dt_h),
        **compare_parts(used, dt_h, starts).model_dump(),
    )


def _savings_co2(record: PlanRecord) -> float | None:
    baseline = record.baseline.get("co2_kg")
    return None if baseline is None or record.co2_kg is None else float(baseline) - record.co2_kg
