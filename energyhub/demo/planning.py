"""The demo's plans: forecast from the ingested telemetry, then a building, a park and the city.

The building and the park are re-planned as the scheduler does (`replan`); the city has no
scheduler path, so its forecast is each park's, joined (one outdoor temperature: their mean).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from psycopg import AsyncConnection

from energyhub.forecast.profile import ForecastError
from energyhub.optimize import PlanError, plan
from energyhub.optimize.scope import resolve_scope
from energyhub.plans.operations import record_failure, save_forecast
from energyhub.plans.store import PlanRecord, inputs_hash, store_plan
from energyhub.scheduler.bands import keep_band
from energyhub.scheduler.inputs import ScopeForecast
from energyhub.scheduler.replan import (
    PlanningConfig,
    Target,
    add_month_peak,
    forecast_with,
    replan,
)
from energyhub.scheduler.state import InitialSoc, initial_soc, with_initial_soc
from energyhub.sites import SiteFile
from energyhub.store.db import Backend

CREATED_BY = "demo"
CITY_METHOD = "central"
"""One MILP for the city: about as fast as the decomposition on a two-park city, and exact."""


@dataclass(frozen=True)
class LevelPlan:
    """A stored plan and the wall seconds its forecast and solve took."""

    record: PlanRecord
    seconds: float
    method: str


def demo_targets(site: SiteFile) -> list[Target]:
    """The first park's first building, the first park: what the demo plans besides the city."""
    park = site.city.parks[0]
    found = [Target("building", park.buildings[0].id)] if park.buildings else []
    return [*found, Target("park", park.id)]


async def plan_levels(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    start: datetime,
    config: PlanningConfig,
) -> list[LevelPlan]:
    """A building, a park and the city over the horizon from `start`, one after the other."""
    plans: list[LevelPlan] = []
    for target in demo_targets(site):
        began = time.monotonic()
        record = await replan(conn, backend, site, target, start, config)
        plans.append(LevelPlan(record, time.monotonic() - began, "central"))
    began = time.monotonic()
    record = await city_plan(conn, backend, site, start, config)
    plans.append(LevelPlan(record, time.monotonic() - began, CITY_METHOD))
    return plans


async def city_plan(
    conn: AsyncConnection, backend: Backend, site: SiteFile, start: datetime, config: PlanningConfig
) -> PlanRecord:
    """Forecast every park, plan the city as one problem, store the plan (or why it failed)."""
    steps = pd.date_range(
        pd.Timestamp(start).tz_convert("UTC"), periods=config.steps, freq=config.step, name="ts"
    )
    horizon = (start, (steps[-1] + config.step).to_pydatetime())
    try:
        forecast, soc = await _city_inputs(conn, backend, site, steps, start, config)
        result = await asyncio.to_thread(
            plan,
            with_initial_soc(site, soc.fractions),
            forecast.frame,
            level="city",
            site_id=site.city.id,
            method=CITY_METHOD,
            time_limit_s=config.time_limit_s,
        )
    except (ForecastError, PlanError) as exc:
        return await record_failure(
            conn, level="city", site_id=site.city.id, horizon=horizon,
            step_s=int(config.step.total_seconds()), created_by=CREATED_BY, error=str(exc),
        )  # fmt: skip
    async with conn.transaction():
        record = await store_plan(
            conn,
            result,
            inputs_ref=f"demo forecast issued {start.isoformat()} (plan_inputs)",
            inputs_digest=inputs_hash(forecast.frame),
            warnings=[*soc.warnings, *(f"forecast: {note}" for note in forecast.notes)],
            created_by=CREATED_BY,
        )
        await save_forecast(
            conn, record.id, forecast.frame, issued_at=start, methods=forecast.methods,
            notes=forecast.notes, initial_soc=soc.sources, unplanned=sorted(forecast.unplanned),
        )  # fmt: skip
        await keep_band(conn, record.id, site.city.id, forecast, start)
    return record


async def _city_inputs(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    steps: pd.DatetimeIndex,
    start: datetime,
    config: PlanningConfig,
) -> tuple[ScopeForecast, InitialSoc]:
    """Each park's forecast, month-to-date peak and starting SOC, joined into the city's."""
    city = ScopeForecast.empty(steps)
    soc = InitialSoc()
    outdoor: list[pd.Series] = []
    for park in site.city.parks:
        scope = resolve_scope(site, "park", park.id)
        part = await forecast_with(conn, backend, site, scope, steps, config)
        await add_month_peak(conn, backend, site, scope, start, part)
        if "outdoor_c" in part.frame:
            outdoor.append(part.frame.pop("outdoor_c"))
        city.frame = city.frame.join(part.frame)
        city.low, city.high = city.low.join(part.low), city.high.join(part.high)
        city.metered.update(part.metered)
        city.methods.update(part.methods)
        city.notes += part.notes
        city.unplanned |= part.unplanned
        park_soc = await initial_soc(conn, scope, start, config.soc_max_age, config.step)
        soc.fractions.update(park_soc.fractions)
        soc.sources.update(park_soc.sources)
        soc.warnings += park_soc.warnings
    if outdoor:
        city.frame["outdoor_c"] = pd.concat(outdoor, axis=1).mean(axis=1)
    return city, soc
