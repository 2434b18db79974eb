"""One re-plan of one site: forecast from telemetry, start storage from its measured SOC, solve,
store the plan (draft, or approved by the site's policy) with the forecast it used.

A re-plan that cannot be made (a silent meter, an infeasible problem) is stored as a failed plan
whose error names the cause, so operators see it where they see plans.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from psycopg import AsyncConnection

from energyhub.carbon.plan_price import with_position_price
from energyhub.config import Settings
from energyhub.errors import ConfigError
from energyhub.forecast.profile import ForecastError, ForecastOptions
from energyhub.forecast.select import ModelCache
from energyhub.localdays import step_floor
from energyhub.optimize import Plan, PlanError, plan
from energyhub.optimize.assets import delivered_column
from energyhub.optimize.scope import Level, Scope, resolve_scope
from energyhub.optimize.tariffs import (
    demand_target_column,
    month_peak_column,
    peak_margin_column,
    peak_reserve_column,
)
from energyhub.plans.operations import record_failure, save_forecast, supersede_outdated
from energyhub.plans.peak import month_peaks_kw
from energyhub.plans.policy import plan_by_policy
from energyhub.plans.store import PlanRecord, inputs_hash, store_plan
from energyhub.scheduler.bands import earlier_coverage, keep_band, peak_margin
from energyhub.scheduler.co2_account import DayCo2Account, day_co2_account
from energyhub.scheduler.inputs import ScopeForecast, forecast_scope
from energyhub.scheduler.margin import (
    ImportErrorCache,
    MeasuredMarginConfig,
    peak_margin_floored,
)
from energyhub.scheduler.state import flexible_delivered, initial_soc, with_initial_soc
from energyhub.scheduler.target import (
    DemandTargetCache,
    DemandTargetConfig,
    TargetRequest,
    demand_target,
)
from energyhub.sites import SiteFile
from energyhub.store.db import Backend
from energyhub.store.queries import parse_step

log = logging.getLogger(__name__)

CREATED_BY = "scheduler"
"""`created_by` of the scheduler's plans (its restarts find their own by it)."""
MARGIN_METHODS = {
    "bands": "bands: root-sum-square of P90 − P50 demand, P50 − P10 PV/wind",
    "measured": "bands, floored at the P90 of metered − planned import over the connection's "
    "recent controlled steps (scheduler.margin)",
}
"""The `peak_margin_kw` input's method, by the source of the margin (PeakMargin.summary)."""
RESERVE_METHOD = (
    "measured: P99 of metered − planned import over the connection's recent controlled steps, "
    "at least the margin (scheduler.margin, optimize.reserve)"
)
"""The `peak_reserve_kw` input's method."""
DELIVERED_METHOD = (
    "served so far in the window open at the re-plan's start: its meter, else the setpoints sent "
    "(its own rule where none was) (scheduler.state.flexible_delivered)"
)
"""The `<flexible load>:delivered_kwh` input's method."""


@dataclass(frozen=True, slots=True)
class Target:
    """A site the scheduler plans: a park at park level or a building at building level."""

    level: Level
    site_id: str


def target_of(site: SiteFile, site_id: str) -> Target | None:
    """The target a park or building id names (None: neither, e.g. the city)."""
    if site.find_park(site_id) is not None:
        return Target("park", site_id)
    if site.find_building(site_id) is not None:
        return Target("building", site_id)
    return None


def targets(site: SiteFile, ids: list[str]) -> list[Target]:
    """The scheduled sites of the settings (none given: every park); ConfigError if they overlap."""
    if not ids:
        return [Target("park", park.id) for park in site.city.parks]
    found: list[Target] = []
    for site_id in ids:
        target = target_of(site, site_id)
        if target is not None:
            found.append(target)
        elif site_id == site.city.id:
            raise ConfigError(
                f"ENERGYHUB_SCHEDULER_SITES: {site_id!r} is the city: name its parks or "
                "buildings (or none: every park)"
            )
        else:
            raise ConfigError(
                f"ENERGYHUB_SCHEDULER_SITES: {site.not_park_or_building(site_id)}: the "
                "scheduler plans parks and buildings"
            )
    parks = {t.site_id for t in found if t.level == "park"}
    for t in found:
        owner = site.find_building(t.site_id)
        if owner is not None and owner[0].id in parks:
            raise ConfigError(
                f"ENERGYHUB_SCHEDULER_SITES: building {t.site_id!r} lies in park "
                f"{owner[0].id!r}, which is scheduled too (their setpoints would collide)"
            )
    return found


@dataclass(frozen=True, slots=True)
class PlanningConfig:
    """The scheduler's planning settings as durations."""

    period: timedelta
    horizon: timedelta
    step: timedelta
    history: timedelta
    soc_max_age: timedelta
    time_limit_s: float
    forecast: ForecastOptions
    intraday_correction: bool = True
    """Re-plans move forecasts by the error so far today (SCHEDULER_INTRADAY_CORRECTION)."""
    measured_margin: MeasuredMarginConfig = field(default_factory=MeasuredMarginConfig)
    """The peak margin's floor at the measured import error (SCHEDULER_MEASURED_MARGIN*)."""
    models: ModelCache = field(default_factory=ModelCache, compare=False)
    """Each meter's forecast model, chosen and fitted once a local day."""
    import_errors: ImportErrorCache = field(default_factory=ImportErrorCache, compare=False)
    """Each connection's measured import errors, read forward from one re-plan to the next."""
    demand_target: DemandTargetConfig = field(default_factory=DemandTargetConfig)
    """The month's demand target (SCHEDULER_DEMAND_TARGET*, energyhub.scheduler.target)."""
    targets: DemandTargetCache = field(default_factory=DemandTargetCache, compare=False)
    """Each site's demand target, made once a local day."""

    @property
    def steps(self) -> int:
        return max(int(self.horizon / self.step), 2)

    def horizon_steps(self, start: datetime) -> pd.DatetimeIndex:
        """The steps (UTC) of a plan starting at `start` (a step boundary)."""
        first = pd.Timestamp(start).tz_convert("UTC")
        return pd.date_range(first, periods=self.steps, freq=self.step, name="ts")

    @staticmethod
    def of(
        settings: Settings, models: ModelCache | None = None, site: SiteFile | None = None
    ) -> PlanningConfig:
        """The settings' planning; `models` shares a cache of fitted models (default: its own);
        the sun is placed at `site`'s `location` where it gives one, else at the settings'."""
        place = site.location if site is not None else None
        sun = (
            (settings.scheduler_latitude_deg, settings.scheduler_longitude_deg)
            if place is None
            else (place.latitude_deg, place.longitude_deg)
        )
        return PlanningConfig(
            period=timedelta(minutes=settings.scheduler_period_min),
            horizon=timedelta(hours=settings.scheduler_horizon_h),
            step=parse_step(settings.scheduler_step),
            history=timedelta(days=settings.scheduler_history_days),
            soc_max_age=timedelta(minutes=settings.scheduler_soc_max_age_min),
            time_limit_s=settings.scheduler_time_limit_s,
            forecast=ForecastOptions(
                max_gap=timedelta(minutes=settings.scheduler_forecast_max_gap_min),
                max_silence=timedelta(hours=settings.scheduler_forecast_max_silence_h),
                latitude_deg=sun[0],
                longitude_deg=sun[1],
            ),
            models=models or ModelCache(),
            intraday_correction=settings.scheduler_intraday_correction,
            measured_margin=MeasuredMarginConfig(
                enabled=settings.scheduler_measured_margin,
                window=timedelta(days=settings.scheduler_measured_margin_days),
                min_steps=settings.scheduler_measured_margin_min_steps,
                reserve=settings.scheduler_peak_reserve,
            ),
            demand_target=DemandTargetConfig.of(settings),
        )


def _solve(
    site: SiteFile,
    inputs: pd.DataFrame,
    target: Target,
    config: PlanningConfig,
    account: DayCo2Account | None = None,
) -> Plan:
    """The cost-optimal plan; with the site's carbon.plan_policy, the plan the policy asks for,
    its limit tightened by what `account` carries."""
    level, site_id, limit = target.level, target.site_id, config.time_limit_s
    policy = site.city.carbon.plan_policy
    if policy is None:
        return plan(site, inputs, level=level, site_id=site_id, time_limit_s=limit)
    return plan_by_policy(
        site, inputs, level=level, site_id=site_id, policy=policy, time_limit_s=limit,
        carried_kg=account.carried_kg if account is not None else 0.0,
    )  # fmt: skip


async def co2_account(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    target: Target,
    start: datetime,
    steps: pd.DatetimeIndex,
) -> DayCo2Account | None:
    """The day's CO₂ account a re-plan carries, if the site's policy asks for one."""
    policy = site.city.carbon.plan_policy
    if policy is None or not policy.carry_day_co2_deficit:
        return None
    return await day_co2_account(conn, backend, site, target.site_id, start, steps)


async def forecast_with(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    scope: Scope,
    steps: pd.DatetimeIndex,
    config: PlanningConfig,
) -> ScopeForecast:
    """`forecast_scope` with the planning settings' history, options, models and correction."""
    return await forecast_scope(
        conn, backend, site, scope, steps, config.history, config.forecast, config.models,
        config.intraday_correction,
    )  # fmt: skip


async def with_month_peak(
    conn: AsyncConnection,
    backend: Backend,
    scope: Scope,
    forecast: ScopeForecast,
    start: datetime,
    tz: ZoneInfo,
) -> None:
    """Add each connection's month-to-date billed peak to a plan's inputs
    (`<grid node>:month_peak_kw`, and a building's own `grid:` in a park's plan): the plan and
    its baseline pay the demand charge only on a rise above it. Without it a plan bills its
    whole peak as a rise above 0 kW."""
    for node, peak in (await month_peaks_kw(conn, backend, scope, start, tz)).items():
        column = month_peak_column(node)
        forecast.frame[column] = peak  # billed so far this month
        forecast.methods[column] = "metered: highest 15-min import this month (plans.peak)"


async def replan(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    target: Target,
    start: datetime,
    config: PlanningConfig,
) -> PlanRecord:
    """Plan `target` over the horizon from `start` (a step boundary) and store the result."""
    steps = config.horizon_steps(start)
    end = (steps[-1] + config.step).to_pydatetime()
    scope = resolve_scope(site, target.level, target.site_id)
    site, priced = await with_position_price(
        conn, backend, site, target.level, target.site_id, start
    )  # carbon_scheme.plan_price: position (energyhub/carbon/plan_price.py)
    try:
        forecast = await forecast_with(conn, backend, site, scope, steps, config)
        soc = await initial_soc(conn, scope, start, config.soc_max_age, config.step)
        await with_month_peak(conn, backend, scope, forecast, start, site.tz)
        margin = await peak_margin_floored(
            conn, backend, scope, peak_margin(forecast), start, config.step,
            config.measured_margin, config.import_errors, site.tz,
        )  # fmt: skip
        column = peak_margin_column(scope.grid_node)
        forecast.frame[column] = margin.margin_kw.to_numpy()  # kept under the billed peak
        forecast.methods[column] = MARGIN_METHODS[margin.summary["source"]]
        if margin.reserve_kw is not None:
            column = peak_reserve_column(scope.grid_node)
            forecast.frame[column] = margin.reserve_kw.to_numpy()
            forecast.methods[column] = RESERVE_METHOD
        account = await co2_account(conn, backend, site, target, start, steps)
        delivered = await flexible_delivered(conn, backend, scope, start, config.step, site.tz)
        for asset_id, kwh in delivered.items():  # a window already open asks what is left
            forecast.frame[delivered_column(asset_id)] = kwh
            forecast.methods[delivered_column(asset_id)] = DELIVERED_METHOD
        started = with_initial_soc(site, soc.fractions)
        request = TargetRequest(
            scope, start, float(margin.summary.get("measured_p90_kw") or 0.0), config.history,
            config.forecast, config.models, config.time_limit_s, config.step,
        )  # fmt: skip
        demand = await demand_target(
            conn, backend, started, request, config.demand_target, config.targets
        )
        if demand.target_kw is not None:
            column = demand_target_column(scope.grid_node)
            forecast.frame[column] = demand.target_kw  # the coming days' peak: no day below it
            forecast.methods[column] = demand.method
        result = await asyncio.to_thread(_solve, started, forecast.frame, target, config, account)
        result = replace(result, peak_margin=margin.summary | {"demand_target": demand.summary})
    except (ForecastError, PlanError) as exc:
        log.warning("re-plan of %s from %s failed: %s", target.site_id, start.isoformat(), exc)
        return await record_failure(
            conn,
            level=target.level,
            site_id=target.site_id,
            horizon=(start, end),
            step_s=int(config.step.total_seconds()),
            created_by=CREATED_BY,
            error=str(exc),
        )
    warnings = [
        *priced,
        *soc.warnings,
        *margin.warnings,
        *([account.note] if account is not None and account.carried_kg > 0 else []),
        *demand.warnings,
        *(f"forecast: {note}" for note in forecast.notes),
    ]
    async with conn.transaction():
        record = await store_plan(
            conn,
            result,
            inputs_ref=f"scheduler forecast issued {start.isoformat()} (plan_inputs)",
            inputs_digest=inputs_hash(forecast.frame),
            warnings=warnings,
            created_by=CREATED_BY,
        )
        await save_forecast(
            conn,
            record.id,
            forecast.frame,
            issued_at=start,
            methods=forecast.methods,
            notes=forecast.notes,
            initial_soc=soc.sources,
            unplanned=sorted(forecast.unplanned),
        )
        await keep_band(conn, record.id, target.site_id, forecast, start)
        await supersede_outdated(conn, record, CREATED_BY)
    return record


@dataclass(frozen=True, slots=True)
class FreshForecast:
    """A forecast made on request: what a re-plan from `issued_at` would plan on."""

    issued_at: datetime
    forecast: ScopeForecast
    coverage: dict[str, Any]


async def forecast_now(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    target: Target,
    at: datetime,
    config: PlanningConfig,
) -> FreshForecast:
    """The forecast a re-plan of `target` from the step `at` falls in would be solved with
    (the same inputs, models and bands), made without planning or storing anything; the band
    coverage of the plans before it. Raises ForecastError as a re-plan would."""
    start = step_floor(at, config.step, site.tz)
    scope = resolve_scope(site, target.level, target.site_id)
    steps = config.horizon_steps(start)
    forecast = await forecast_with(conn, backend, site, scope, steps, config)
    coverage = await earlier_coverage(conn, target.site_id, forecast, start)
    return FreshForecast(start, forecast, coverage)
