"""The month's demand target of a perfect-foresight re-solve, known with perfect information.

The plans carry the month's demand target (energyhub.scheduler.target): no day shaves below the
peak the coming days of the month need anyway, because the month's bill is its highest peak and
a later day rises above the shave. Perfect foresight is the plan re-solved on the metered demand,
so it carries the target too, made the way the scheduler makes it but from what was metered: the
lowest peak of the same model (target.lowest_peak, no error allowance) over the **metered**
demand of the coming days (ENERGYHUB_SCHEDULER_DEMAND_TARGET_DAYS, never past the local month's
end, as far as there are readings; at least the steps re-solved), averaged to hours as the
scheduler's, from the state the re-solve starts in (each store's SOC then) to the state the
meters left at the horizon's end.

Why it is still a bound on the month's bill: the target plan is the cheapest schedule from that
state over those metered days with their whole peak billed, so any schedule (the plans' too)
whose month peak stays below the target pays more for energy over those days than the demand
charge it saves, and one that does not reaches the target anyway; a day's shave below it is
billed back on a later day of the month and is on no month's bill. A per-day re-solve from the
metered month-to-date peak without a target credited that shave on a month's first day all the
same, and the later days, each re-solved from the metered peak again, never paid it back: the sum
over the days was a saving no consistent schedule could keep. Hourly means sit under the 15-min
peaks inside them, so the target errs low; where it is below what the re-solved steps reach
anyway (the last day of the data, whose target is of that day alone), the re-solve is what it
was without one.

Only where the plans may have one (target.no_target_reason: monthly billing, a demand charge,
something to shave with, turned on). A failed read or solve gives no target and a note, and the
re-solve is what it was without one.
"""

from __future__ import annotations

__all__ = ["FORESIGHT_TARGET_TIME_LIMIT_S", "ForesightTarget", "TargetSource", "foresight_target"]

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from psycopg import AsyncConnection

from energyhub.errors import EnergyhubError
from energyhub.optimize.errors import InfeasiblePlanError
from energyhub.optimize.forecast import ForecastError
from energyhub.optimize.scope import Scope
from energyhub.plans.bill import PRICE_COLUMNS
from energyhub.plans.counterfactual import ReadSpan, metered_inputs
from energyhub.plans.metered import soc_fractions, storages
from energyhub.plans.tracked import SetpointTrack
from energyhub.scheduler.target import (
    MIN_STEPS,
    TARGET_STEP,
    DemandTargetConfig,
    averaged,
    lowest_peak,
    no_target_reason,
    target_steps,
)
from energyhub.sites import SiteFile
from energyhub.store.db import Backend

FORESIGHT_TARGET_TIME_LIMIT_S = 30.0
"""The several-days solve is bounded as the re-solve is (realized.PERFECT_FORESIGHT_TIME_LIMIT_S):
hourly, a week is 168 steps."""
CACHED_TARGETS = 512
"""Targets kept by their inputs (the API and the bench ask the same park-day more than once)."""

Socs = tuple[dict[str, float], dict[str, float]]
_cache: OrderedDict[tuple[object, ...], float] = OrderedDict()


@dataclass(frozen=True, slots=True)
class TargetSource:
    """Where a re-solve's target is read from: the store, the plans' inputs (their prices), the
    scope's telemetry if already read, and the scheduler's target settings."""

    backend: Backend
    plan_inputs: pd.DataFrame
    config: DemandTargetConfig = field(default_factory=DemandTargetConfig)
    read: ReadSpan | None = None


@dataclass(frozen=True, slots=True)
class ForesightTarget:
    """The target (None: none) and what to note about it."""

    target_kw: float | None
    notes: list[str] = field(default_factory=list)


async def foresight_target(
    conn: AsyncConnection,
    sites: tuple[SiteFile, Callable[[SiteFile, Socs], SiteFile]],
    scope: Scope,
    start: tuple[pd.Timestamp, pd.Timedelta, dict[str, float]],
    tracked: tuple[frozenset[str], SetpointTrack],
    source: TargetSource,
) -> ForesightTarget:
    """The target of a re-solve from `start` (its first step, the step, each store's SOC fraction
    there, stores without SOC readings at their tracked level); `sites`: the site file and how the
    re-solve pins its stores (realized.foresight_site); `tracked`: the stores without SOC
    readings and their setpoint track (read on a copy, never moved)."""
    site, fixed = sites
    if no_target_reason(scope, source.config) is not None:
        return ForesightTarget(None)
    first, step, socs = start
    resolution = max(TARGET_STEP, step.to_pytimedelta())
    steps = target_steps(first.to_pydatetime(), source.config.days, site.tz, resolution)
    if len(steps) < MIN_STEPS:
        return ForesightTarget(None)
    fine = pd.date_range(first, steps[-1] + resolution, freq=step, inclusive="left", name="ts")
    try:
        metered = await metered_inputs(
            conn, source.backend, site, scope, fine, source.plan_inputs, source.read
        )
    except ForecastError as exc:
        return ForesightTarget(None, [f"{scope.id}: no demand target for perfect foresight: {exc}"])
    frame = metered.frame
    for name in PRICE_COLUMNS:  # the plans' prices where they cover the days, else the tariff's
        if name in frame and not source.plan_inputs[name].reindex(fine).notna().all():
            frame = frame.drop(columns=name)
    complete = frame.notna().all(axis=1)
    hours = averaged(frame[complete], steps)
    have = hours.notna().all(axis=1).to_numpy()
    n = len(have) if have.all() else int(np.argmin(have))  # as far as there are readings
    if n < MIN_STEPS:
        return ForesightTarget(None)
    hours = hours.iloc[:n]
    end = min(steps[n - 1] + resolution, pd.Timestamp(fine[complete.to_numpy()][-1]) + step)
    ends = (socs, await _socs_at(conn, scope, end, step, tracked))
    tries = [ends]
    if tracked[0]:
        tries.append((_without(ends[0], tracked[0]), _without(ends[1], tracked[0])))
    return await _solved([fixed(site, t) for t in tries], scope, hours)


def _without(socs: dict[str, float], names: frozenset[str]) -> dict[str, float]:
    return {a: v for a, v in socs.items() if a not in names}


async def _socs_at(
    conn: AsyncConnection,
    scope: Scope,
    end: pd.Timestamp,
    step: pd.Timedelta,
    tracked: tuple[frozenset[str], SetpointTrack],
) -> dict[str, float]:
    """Each store's SOC fraction at `end`: metered, or where its setpoints drove it."""
    found = await soc_fractions(conn, scope, end, step)
    names, track = tracked
    unread = [s for s in storages(scope) if s.id in names]
    if unread:
        ahead = SetpointTrack(dict(track.until), dict(track.level_kwh))
        await ahead.advance(conn, unread, end, step.total_seconds() / 3600)
        for store in unread:
            kwh = ahead.level_kwh[store.id]
            found[store.id] = min(max(kwh / store.energy_kwh, store.soc_min), store.soc_max)
    return found


async def _solved(sites: list[SiteFile], scope: Scope, hours: pd.DataFrame) -> ForesightTarget:
    """lowest_peak over `hours` on the first of `sites` it can be solved on (the stores pinned
    where the meters had them; then the stores without SOC readings at their soc_initial →
    soc_final, as the re-solve falls back); cached by its inputs."""
    for i, fixed in enumerate(sites):
        key = (
            scope.level, scope.id, int(pd.util.hash_pandas_object(hours).sum()),
            fixed.model_dump_json(),
        )  # fmt: skip
        if key in _cache:
            _cache.move_to_end(key)
            return ForesightTarget(_cache[key])
        try:
            found = await asyncio.to_thread(
                lowest_peak, fixed, hours, scope, 0.0, FORESIGHT_TARGET_TIME_LIMIT_S
            )
        except EnergyhubError as exc:
            if isinstance(exc, InfeasiblePlanError) and i + 1 < len(sites):
                continue
            return ForesightTarget(
                None, [f"{scope.id}: no demand target for perfect foresight: {exc}"]
            )
        _cache[key] = found.target_kw
        while len(_cache) > CACHED_TARGETS:
            _cache.popitem(last=False)
        return ForesightTarget(found.target_kw)
    return ForesightTarget(None)
