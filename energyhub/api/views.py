"""Stored records and frames as response models and CSV, times in the site's zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd

from energyhub.api.schemas.plans import (
    ActualStepPublic,
    PlanActualPublic,
    PlanPublic,
    SocPublic,
)
from energyhub.plans.store import PlanRecord


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


def frame_csv(frame: pd.DataFrame) -> str:
    """RFC 3339 `ts` first, then the columns; floats as JSON would print them, empty for none."""
    lines = [",".join(("ts", *(str(c) for c in frame.columns)))]
    for ts, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        cells = ("" if pd.isna(v) else repr(float(v)) for v in row)
        lines.append(",".join((ts.isoformat(), *cells)))
    return "\n".join(lines) + "\n"


def _number(value: float | None) -> float | None:
    return None if value is None or value != value else float(value)  # NaN != NaN


def actual_public(record: PlanRecord, frame: pd.DataFrame, zone: ZoneInfo) -> PlanActualPublic:
    """Plan vs actual rows as the response, with the horizon's planned and metered import kWh."""
    hours = record.step_s / 3600
    batteries = [
        c.removeprefix("planned_soc_pct:")
        for c in frame.columns
        if c.startswith("planned_soc_pct:")
    ]
    steps = []
    for ts, row in zip(frame.index, frame.to_dict("records"), strict=True):
        soc = [
            SocPublic(
                asset_id=b,
                planned_soc_pct=_number(row[f"planned_soc_pct:{b}"]),
                actual_soc_pct=_number(row[f"actual_soc_pct:{b}"]),
            )
            for b in batteries
        ]
        values = {
            k: _number(row[k])
            for k in ("planned_import_kw", "actual_import_kw", "planned_pv_kw", "actual_pv_kw")
        }
        steps.append(
            ActualStepPublic(
                ts=pd.Timestamp(ts).tz_convert(zone).to_pydatetime(), soc=soc, **values
            )
        )
    return PlanActualPublic(
        plan_id=record.id,
        site_id=record.site_id,
        step_s=record.step_s,
        planned_import_kwh=float(frame["planned_import_kw"].fillna(0).sum() * hours),
        actual_import_kwh=float(frame["actual_import_kw"].fillna(0).sum() * hours),
        steps=steps,
    )
