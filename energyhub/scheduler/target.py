"""The month's demand target: the peak the site is expected to need over the coming days, which
no day's plan need shave below.

Monthly demand billing bills the month's highest 15-min import. A re-plan sees 24 h: on an easy
day it shaves the month-to-date peak as deep as that day allows, spending storage cycles, and a
harder day later in the month rises above it anyway and is billed the rise; the month ends no
lower. Peak-shaving controllers keep a monthly demand target for this. Once a local day per
scheduled site, the scheduler forecasts the next `days` (to the month's end at most) with the
models its re-plans use, averaged to hours, and solves the same model over them, the whole peak
billed, from the stores' measured SOC: the peak that plan holds is the target. Each re-plan then
takes import up to max(month-to-date peak, min(target, the rules' own peak)) as free of demand
charge (inputs column `<node>:demand_target_kw`, energyhub.optimize.tariffs.free_peak_kw), and
the reserve and the peak guard hold that level, not a lower one.

The uncertainty allowance: the target plan is solved on the connection's **P90** demand, the
P50 raised at each step by the upward error the day plans' margin is made of (the bands'
root-sum-square, energyhub.scheduler.bands.peak_margin) floored at the measured P90 of metered −
planned import. Over several days the month's peak is set by the days that come in high, so the
P50's peak understates it (in the closed loop of 2026-12-07, the P50 week ahead of Lingang held
8,119 kW where the plans then met 8,581); hourly means sit under the 15-min peaks inside them,
which keeps the estimate from the high side. Without storage or a flexible load (nothing to
shave with), under daily billing or without a demand charge, when turned off, or when the
forecast or the solve fails, there is no target and the re-plan is what it was before; the plan
says so in a warning where it failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from psycopg import AsyncConnection

from energyhub.config import Settings
from energyhub.errors import EnergyhubError
from energyhub.forecast.profile import ForecastOptions
from energyhub.forecast.select import ModelCache
from energyhub.localdays import next_month_start, step_floor
from energyhub.optimize import plan
from energyhub.optimize.scope import Scope
from energyhub.optimize.tariffs import month_peak_column
from energyhub.plans.metered import storages
from energyhub.scheduler.bands import peak_margin
from energyhub.scheduler.inputs import forecast_scope
from energyhub.sites import FlexibleLoad, SiteFile
from energyhub.store.db import Backend

log = logging.getLogger(__name__)

TARGET_STEP = timedelta(hours=1)
"""The target plan's resolution (or the re-plans' step, if longer): hourly keeps a week's model
small (168 steps) and its peak on the low side of the 15-min peaks the days will meter. The
forecast is made at the re-plans' own step and averaged to it: the models the day's re-plan
chose and fitted are reused (choosing them again at an hourly step cost 30–40 s a park)."""
MIN_STEPS = 2
"""Hours the target plan needs (the model needs two steps)."""


@dataclass(frozen=True, slots=True)
class DemandTargetConfig:
    """SCHEDULER_DEMAND_TARGET*: on or off, and how many days ahead."""

    enabled: bool = True
    days: int = 7

    @classmethod
    def of(cls, settings: Settings) -> DemandTargetConfig:
        """The settings' ENERGYHUB_SCHEDULER_DEMAND_TARGET and _DAYS."""
        return cls(settings.scheduler_demand_target, settings.scheduler_demand_target_days)


@dataclass(frozen=True, slots=True)
class DemandTarget:
    """The target (None: none), how it was found (the plan JSON's `demand_target`) and a
    warning where it could not be made."""

    target_kw: float | None
    summary: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def method(self) -> str:
        """The `demand_target_kw` input's method (forecast.methods)."""
        s = self.summary
        return (
            f"target: lowest peak of the same model on the hourly P90 demand (P50 + bands' "
            f"error, at least {s.get('error_floor_kw', 0.0):,.0f} kW) {s.get('start')} → "
            f"{s.get('end')}, whole peak billed, from the measured SOC (scheduler.target, made "
            f"{s.get('made_at')})"
        )


@dataclass
class DemandTargetCache:
    """Each site's target of the local day it was made on (one several-days solve a day)."""

    found: dict[tuple[str, date], DemandTarget] = field(default_factory=dict)

    def get(self, site_id: str, day: date) -> DemandTarget | None:
        return self.found.get((site_id, day))

    def put(self, site_id: str, day: date, target: DemandTarget) -> None:
        for key in [k for k in self.found if k[0] == site_id and k[1] != day]:
            del self.found[key]  # yesterday's is of no use
        self.found[(site_id, day)] = target


def no_target_reason(scope: Scope, config: DemandTargetConfig) -> str | None:
    """Why the scope gets no target, or None when it may have one."""
    grid = scope.grid
    if not config.enabled:
        return "off (ENERGYHUB_SCHEDULER_DEMAND_TARGET=false)"
    if grid.demand_billing != "monthly":
        return f"demand billed {grid.demand_billing}: each day's peak is billed"
    if grid.demand_charge_cny_per_kw <= 0:
        return "no demand charge"
    flexible = any(isinstance(a, FlexibleLoad) for _, a in scope.assets())
    if not storages(scope) and not flexible:
        return "no storage or flexible load to hold a peak with"
    return None


def target_steps(
    at: datetime, days: int, tz: Any, step: timedelta = TARGET_STEP
) -> pd.DatetimeIndex:
    """The target plan's steps (UTC, hourly unless `step` says): from the step `at` falls in, on
    the site's local clock (a +05:30 site's hours start at :30 UTC, as its re-plans' steps and its
    tariff's hours do), `days` ahead but not past the end of its local month (the month whose
    peak is billed)."""
    first = pd.Timestamp(step_floor(at, step, tz))
    end = min(first + pd.Timedelta(days=days), next_month_start(first, tz))
    return pd.date_range(first, end, freq=step, inclusive="left", name="ts")


def averaged(frame: pd.DataFrame, steps: pd.DatetimeIndex) -> pd.DataFrame:
    """`frame` (at a finer step) averaged over each of `steps` (target_steps): the target plan's
    inputs. An hour's mean sits under the 15-min peaks inside it, so the target errs low."""
    step = pd.Timedelta(steps[1] - steps[0])
    return frame.resample(step, origin=steps[0]).mean().reindex(steps)


@dataclass(frozen=True, slots=True)
class TargetRequest:
    """What a re-plan hands the target: where, from when, the connection's measured P90 import
    error (0 without one), its forecast settings and models."""

    scope: Scope
    at: datetime
    error_floor_kw: float
    history: timedelta
    forecast: ForecastOptions
    models: ModelCache
    time_limit_s: float
    step: timedelta = timedelta(minutes=15)
    """The re-plans' step, which the forecast is made at (their models are reused)."""


async def demand_target(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    request: TargetRequest,
    config: DemandTargetConfig,
    cache: DemandTargetCache | None = None,
) -> DemandTarget:
    """The scope's demand target for the local day of `request.at` (cached for that day); None
    with the reason when it has none. `site` carries the stores' SOC at `request.at`. Never
    raises for a forecast or solve that fails."""
    scope = request.scope
    reason = no_target_reason(scope, config)
    if reason is not None:
        return DemandTarget(None, {"node": scope.grid_node, "reason": reason})
    day = pd.Timestamp(request.at).tz_convert(site.tz).date()
    known = cache.get(scope.id, day) if cache is not None else None
    if known is not None:
        return known
    found = await _estimate(conn, backend, site, request, config)
    if cache is not None:
        cache.put(scope.id, day, found)
    return found


async def _estimate(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    request: TargetRequest,
    config: DemandTargetConfig,
) -> DemandTarget:
    scope, node = request.scope, request.scope.grid_node
    resolution = max(TARGET_STEP, request.step)
    steps = target_steps(request.at, config.days, site.tz, resolution)
    summary: dict[str, Any] = {
        "node": node,
        "days": config.days,
        "made_at": pd.Timestamp(request.at).isoformat(),
        "error_floor_kw": request.error_floor_kw,
    }
    if len(steps) < MIN_STEPS:
        return DemandTarget(None, summary | {"reason": "the month ends within the hour"})
    end = steps[-1] + resolution
    summary.update(start=steps[0].isoformat(), end=end.isoformat())
    fine = pd.date_range(steps[0], end, freq=request.step, inclusive="left", name="ts")
    began = time.perf_counter()
    try:
        forecast = await forecast_scope(
            conn, backend, site, scope, fine, request.history, request.forecast,
            request.models, intraday_correction=False,
        )  # fmt: skip
        frame = averaged(forecast.frame, steps)
        error = peak_margin(forecast).clip(lower=request.error_floor_kw)
        error = error.resample(resolution).mean().reindex(steps).fillna(request.error_floor_kw)
        found = await asyncio.to_thread(
            lowest_peak, site, frame, scope, error.to_numpy(), request.time_limit_s
        )
    except EnergyhubError as exc:
        return _failed(summary, node, str(exc))
    except Exception as exc:  # an estimate is optional: it must never stop a re-plan
        log.exception("demand target of %s failed", scope.id)
        return _failed(summary, node, f"{type(exc).__name__}: {exc}")
    summary.update(
        target_kw=found.target_kw,
        error_at_peak_kw=found.error_kw,
        at=found.at.isoformat(),
        steps=len(steps),
        solve_s=round(time.perf_counter() - began, 2),
    )
    log.info("%s: demand target %.0f kW (%s)", scope.id, found.target_kw, summary["at"])
    return DemandTarget(found.target_kw, summary)


@dataclass(frozen=True, slots=True)
class LowestPeak:
    """The coming days' plan: its peak import (the target), the step it is reached at (the
    first, where several are), and the P90 error its demand was raised by there."""

    target_kw: float
    at: pd.Timestamp
    error_kw: float


def lowest_peak(
    site: SiteFile,
    frame: pd.DataFrame,
    scope: Scope,
    error_kw: npt.ArrayLike,
    time_limit_s: float,
) -> LowestPeak:
    """The same model as the re-plans over `frame` (the coming days' P50 forecast) with the head
    node's electricity demand raised by `error_kw` per step (the P90) and the whole peak billed:
    the lowest peak the site holds at a cost the demand charge pays for. Raises PlanError."""
    node, head = scope.grid_node, scope.nodes[0].id
    error = np.broadcast_to(np.asarray(error_kw, dtype=float), (len(frame),))
    frame = frame.copy()
    column = f"{head}:electricity_kw"
    frame[column] = (frame[column] if column in frame.columns else 0.0) + error
    frame[month_peak_column(node)] = 0.0  # the whole peak billed: the lowest it can be
    result = plan(site, frame, level=scope.level, site_id=scope.id, time_limit_s=time_limit_s)
    imports = result.schedule[f"{node}:import_kw"].to_numpy(dtype=float)
    at = int(np.argmax(imports))
    return LowestPeak(float(imports[at]), pd.Timestamp(result.schedule.index[at]), float(error[at]))


def _failed(summary: dict[str, Any], node: str, why: str) -> DemandTarget:
    warning = (
        f"demand target: none for {node} ({why}): the plan takes only the month-to-date peak "
        "as free of demand charge"
    )
    return DemandTarget(None, summary | {"reason": why}, [warning])
