"""A plan's compared frames: each grid connection's planned schedule beside the metered series
of the same steps (energyhub.plans.metered), priced, with the steps it controlled and the import
limits its setpoints carried; read one plan at a time or for all plans of a span at once."""

from __future__ import annotations

__all__ = ["PlanRead", "SpanFrames", "controlled_reads", "month_peaks", "plan_parts", "read_plan"]

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from psycopg import AsyncConnection

from energyhub.optimize.errors import PlanInputError
from energyhub.optimize.scope import Scope, resolve_scopes
from energyhub.optimize.tariffs import month_peak_column
from energyhub.plans.bill import PRICE_COLUMNS, priced
from energyhub.plans.comparison import Part
from energyhub.plans.errors import PlanSiteError
from energyhub.plans.metered import actual_frame, compared_frame, planned_frame
from energyhub.plans.operations import plan_input_columns, plan_inputs
from energyhub.plans.store import (
    PlanRecord,
    controlled_schedules,
    controlled_steps,
    import_limits,
    import_limits_in,
    plan_steps,
)
from energyhub.sites import SiteFile
from energyhub.store.db import Backend


def month_peaks(record: PlanRecord, inputs: pd.DataFrame) -> dict[str, float]:
    """The month-to-date peak each of the plan's connections started from (by grid node)."""
    stored = record.baseline.get("month_peak_kw")
    if isinstance(stored, dict):
        return {str(k): float(v) for k, v in stored.items()}
    suffix = month_peak_column("")
    return {
        str(c).removesuffix(suffix): float(inputs[c].iloc[0])
        for c in inputs.columns
        if str(c).endswith(suffix) and len(inputs)
    }


@dataclass
class SpanFrames:
    """The metered frames (`actual_frame`) of a span, read once per connection and shared by the
    plans inside it: a month's lead-in reads a connection's meters once, not once per plan."""

    conn: AsyncConnection
    backend: Backend
    span: tuple[datetime, datetime]
    read: dict[tuple[str, pd.Timedelta], pd.DataFrame] = field(default_factory=dict)

    def grid(self, step: pd.Timedelta) -> pd.DatetimeIndex:
        """The span's steps on the grid of `step`, UTC."""
        first = pd.Timestamp(self.span[0]).tz_convert("UTC").ceil(step)
        last = pd.Timestamp(self.span[1]).tz_convert("UTC")
        return pd.date_range(first, last, freq=step, inclusive="left")

    async def frame(
        self, scope: Scope, index: pd.DatetimeIndex, step: pd.Timedelta
    ) -> pd.DataFrame:
        """`actual_frame` over `index` (steps of `step`, not necessarily each of them): the
        span's frame where `index` is on its grid (NaN outside the span), else read as asked."""
        grid = self.grid(step)
        if len(grid) < 2 or ((index.as_unit("ns").asi8 - grid[0].value) % step.value).any():
            return await actual_frame(self.conn, self.backend, scope, index)
        key = (scope.id, step)
        if key not in self.read:
            self.read[key] = await actual_frame(self.conn, self.backend, scope, grid)
        return self.read[key].reindex(index)


@dataclass(frozen=True, slots=True)
class PlanRead:
    """What a plan's compared frames are made of: its schedule, its inputs, the steps it sent a
    setpoint for (UTC) and the import limits those carried (store.import_limits)."""

    schedule: pd.DataFrame
    inputs: pd.DataFrame
    controlled: set[pd.Timestamp]
    limits: pd.DataFrame


async def read_plan(conn: AsyncConnection, plan_id: int) -> PlanRead:
    """A plan's whole schedule and inputs, its controlled steps and their import limits."""
    return PlanRead(
        await plan_steps(conn, plan_id),
        await plan_inputs(conn, plan_id),
        await controlled_steps(conn, plan_id),
        await import_limits(conn, plan_id),
    )


async def controlled_reads(
    conn: AsyncConnection, plan_ids: Sequence[int], span: tuple[datetime, datetime]
) -> dict[int, PlanRead]:
    """Each plan's PlanRead over the steps in `span` it controlled (its schedule only there; of
    its inputs only the prices), read for all plans at once: a site's month reads a few queries,
    not four per plan of the month, and not each plan's whole horizon."""
    schedules = await controlled_schedules(conn, plan_ids, span)
    prices = await plan_input_columns(conn, plan_ids, PRICE_COLUMNS)
    limits = await import_limits_in(conn, plan_ids, span)
    empty = pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="ts"))
    out = {}
    for plan_id in plan_ids:
        schedule, controlled = schedules.get(plan_id, (empty, set()))
        out[plan_id] = PlanRead(schedule, prices[plan_id], controlled, limits[plan_id])
    return out


async def plan_parts(
    conn: AsyncConnection,
    backend: Backend,
    record: PlanRecord,
    site: SiteFile,
    frames: SpanFrames | None = None,
    read: PlanRead | None = None,
) -> tuple[list[Part], dict[str, float]]:
    """Each connection's compared frame of a plan (none if its horizon has < 2 steps), and
    month peaks; the metered side from `frames` where given (its steps outside their span then
    unknown); the plan as `read` has it where given (else all of it, read_plan)."""
    read = await read_plan(conn, record.id) if read is None else read
    schedule, inputs = read.schedule.copy(), read.inputs
    peaks = month_peaks(record, inputs)
    horizon_steps = (record.horizon_end - record.horizon_start).total_seconds() / record.step_s
    if len(schedule) < 1 or horizon_steps < 2 or (len(schedule) < 2 and frames is None):
        return [], peaks
    index = pd.DatetimeIndex(schedule.index).tz_convert("UTC")
    schedule.index = index
    step = pd.Timedelta(seconds=record.step_s)
    controlled, limits = read.controlled, read.limits
    try:
        scopes = resolve_scopes(site, record.level, record.site_id)
    except PlanInputError:  # named "--id", an option of `energyhub plan`, not of this
        raise PlanSiteError(record.id, record.level, record.site_id) from None
    parts = []
    for scope in scopes:
        if frames is None:
            actual = await actual_frame(conn, backend, scope, index)
        else:
            actual = await frames.frame(scope, index, step)
        if site.unmetered_electricity(scope.id):  # the meters there sum to part of the import
            actual["import_kw"] = np.nan
        frame = compared_frame(planned_frame(schedule, scope), actual, scope, controlled)
        priced(frame, scope, inputs, site)
        nodes = {node.id for node in scope.nodes}
        held = limits[limits["site_id"].isin(nodes)].groupby("ts")["import_limit_kw"].min()
        frame["import_limit_kw"] = held.reindex(frame.index).to_numpy(dtype=float)
        parts.append((scope, frame))
    return parts, peaks
