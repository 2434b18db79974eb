"""Stored records and frames as response models and CSV, times in the site's zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd

from energyhub.api.schemas.plans import (
    ActualStepPublic,
    DaySavingsPublic,
    FrontierPointPublic,
    PlanActualPublic,
    PlanPublic,
    RealizedPublic,
    VsBaselinePublic,
)
from energyhub.plans.actual import PlanVsActual
from energyhub.plans.comparison import DaySavings
from energyhub.plans.days import over_days
from energyhub.plans.store import PlanRecord
from energyhub.plans.verdict import verdict


def _local(ts: datetime | None, zone: ZoneInfo) -> datetime | None:
    return ts.astimezone(zone) if ts is not None else None


def plan_public(record: PlanRecord, zone: ZoneInfo) -> PlanPublic:
    return PlanPublic(
        id=record.id,
        level=record.level,
        site_id=record.site_id,
        status=record.status,
        horizon_start=record.horizon_start.astimezone(zone),
        horizon_end=record.horizon_end.astimezone(zone),
        step_s=record.step_s,
        objective_cny=record.objective_cny,
        cost_cny=record.cost_terms_cny,
        co2_kg=record.co2_kg,
        baseline_cost_cny=record.baseline.get("cost_cny"),
        baseline_co2_kg=record.baseline.get("co2_kg"),
        vs_baseline=_vs_baseline(record),
        month_peak_kw=record.baseline.get("month_peak_kw", {}),
        frontier=[FrontierPointPublic.model_validate(p) for p in record.solver.get("frontier", [])],
        frontier_point=record.solver.get("frontier_point"),
        solver=record.solver,
        inputs_hash=record.inputs_hash,
        warnings=record.warnings,
        error=record.error,
        created_by=record.created_by,
        created_at=record.created_at.astimezone(zone),
        approved_by=record.approved_by,
        approved_at=_local(record.approved_at, zone),
        activated_at=_local(record.activated_at, zone),
        rejected_by=record.rejected_by,
        rejected_at=_local(record.rejected_at, zone),
        rejected_reason=record.rejected_reason,
        superseded_by=record.superseded_by,
    )


def _vs_baseline(record: PlanRecord) -> VsBaselinePublic | None:
    found = verdict(record)
    if found is None:
        return None
    return VsBaselinePublic(
        delta_cost_cny=found.cost.delta,
        delta_cost_pct=found.cost.pct,
        delta_co2_kg=found.co2.delta,
        delta_co2_pct=found.co2.pct,
        cost_worse_because=found.cost.worse,
        co2_worse_because=found.co2.worse,
    )


def frame_csv(frame: pd.DataFrame) -> str:
    """RFC 3339 `ts` first, then the columns; floats as JSON would print them, empty for none."""
    lines = [",".join(("ts", *(str(c) for c in frame.columns)))]
    for ts, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        cells = ("" if pd.isna(v) else repr(float(v)) for v in row)
        lines.append(",".join((ts.isoformat(), *cells)))
    return "\n".join(lines) + "\n"


def day_public(day: DaySavings) -> DaySavingsPublic:
    return DaySavingsPublic.model_validate(
        {**day.model_dump(exclude={"steps"}), "compared_steps": day.steps}
    )


def realized_total(days: list[DaySavings]) -> RealizedPublic | None:
    total = over_days(days)
    return None if total is None else RealizedPublic.model_validate(total.model_dump())


def actual_public(result: PlanVsActual, zone: ZoneInfo) -> PlanActualPublic:
    """Plan vs actual as the response, times in the site's zone, with the horizon's planned and
    metered net import kWh."""
    hours = result.step_s / 3600
    data = result.model_dump(exclude={"steps", "step_details", "days"})
    steps = [
        ActualStepPublic.model_validate({**s.model_dump(), "ts": s.ts.astimezone(zone)})
        for s in result.step_details
    ]
    days = [day_public(d) for d in result.days]
    return PlanActualPublic(
        **data,
        compared_steps=result.steps,
        planned_import_kwh=sum(s.planned_import_kw or 0.0 for s in result.step_details) * hours,
        actual_import_kwh=sum(s.actual_import_kw or 0.0 for s in result.step_details) * hours,
        days=days,
        steps=steps,
    )
