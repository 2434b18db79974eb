"""A plan's inputs table forecast from telemetry: demands per building, renewables, outdoor_c.

Columns follow `energyhub plan --inputs` (DESIGN §6): `<building>:electricity_kw`, `:heat_kw`,
`:cooling_kw`, `<park>:electricity_kw` (a park with a main meter of its own: its own load),
`<pv>:available_kw`, `outdoor_c`. A forecast that cannot be made raises ForecastError naming the
meter; everything filled or assumed is listed in `notes`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Literal

import numpy as np
import pandas as pd
from psycopg import AsyncConnection

from energyhub.forecast.calendar import unknown_years
from energyhub.forecast.gbm import PvSite
from energyhub.forecast.profile import (
    ForecastError,
    ForecastOptions,
    History,
    SeriesForecast,
    clean_history,
    forecast_outdoor,
    forecast_pv,
)
from energyhub.forecast.pv import metered_pv_kw
from energyhub.forecast.select import (
    ModelCache,
    demand_candidates,
    forecast_chosen,
    pv_candidates,
)
from energyhub.forecast.solar import far_sun_note
from energyhub.forecast.store import read_weather
from energyhub.optimize.scope import COOLING_SOURCES, HEAT_SOURCES, Node, Scope
from energyhub.scheduler.demand import (
    electricity_history,
    electricity_mains,
    outdoor_meter,
    park_electricity_history,
    pv_meter,
    thermal_capacity_kw,
    thermal_history,
)
from energyhub.scheduler.telemetry import StoredMeter, Telemetry, read_telemetry, stored_meters
from energyhub.sites import (
    PV,
    Building,
    CopFromOutdoor,
    Park,
    SiteFile,
    ThermalStorage,
    Wind,
    load_taken_as_0,
)
from energyhub.store.db import Backend


@dataclass
class ScopeForecast:
    """The inputs table (UTC steps × columns, the P50), its P10/P90 band where one was measured,
    each column's method, and what was filled."""

    frame: pd.DataFrame
    low: pd.DataFrame = field(default_factory=pd.DataFrame)
    high: pd.DataFrame = field(default_factory=pd.DataFrame)
    methods: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unplanned: set[str] = field(default_factory=set)
    """Assets whose demand is not metered: the plan must not steer them."""
    metered: dict[str, pd.Series] = field(default_factory=dict)
    """The history each banded column was forecast from (to check earlier bands against)."""

    @staticmethod
    def empty(steps: pd.DatetimeIndex) -> ScopeForecast:
        """No columns yet, on these steps."""
        return ScopeForecast(
            pd.DataFrame(index=steps), pd.DataFrame(index=steps), pd.DataFrame(index=steps)
        )

    def add(self, forecast: SeriesForecast) -> None:
        name = str(forecast.values.name)
        self.frame[name] = forecast.values.to_numpy()
        if forecast.low is not None and forecast.high is not None:
            self.low[name] = forecast.low.to_numpy()
            self.high[name] = forecast.high.to_numpy()
        self.methods[name] = forecast.method
        self.notes += forecast.notes


@dataclass(frozen=True, slots=True)
class _Context:
    site: SiteFile
    telemetry: Telemetry
    meters: list[StoredMeter]
    steps: pd.DatetimeIndex
    now: pd.Timestamp
    options: ForecastOptions
    district_kw: dict[str, float]
    """What the park's own assets can make for its buildings (park level only)."""
    models: ModelCache | None = None
    weather: pd.DataFrame | None = None
    """Stored weather forecasts of the park over history and steps (newest issue before now)."""
    intraday_correction: bool = True
    """Demand and PV forecasts moved by today's error so far (forecast.intraday)."""
    park_load: str | None = None
    """The park's own demand column when it holds what its buildings' mains leave out (a park
    plan of a park measured at its connection)."""

    def meters_of(self, site_id: str) -> list[StoredMeter]:
        return [m for m in self.meters if m.site_id == site_id]


def _outdoor(ctx: _Context, park: Park, out: ScopeForecast) -> tuple[pd.Series, pd.Series] | None:
    """Outdoor temperature history and forecast, or None (with a note) if there is none."""
    meter = outdoor_meter(ctx.meters, park.id)
    if meter is None:
        out.notes.append(f"outdoor_c: no outdoor temperature sensor in {park.id}; no degree terms")
        return None
    try:
        forecast = forecast_outdoor(
            ctx.telemetry.history(meter), ctx.steps, now=ctx.now, tz=ctx.site.tz,
            options=ctx.options,
        )  # fmt: skip
    except ForecastError as exc:
        out.notes.append(f"{exc}; forecasts go without degree terms")
        return None
    past, _ = clean_history(ctx.telemetry.history(meter), "outdoor_c", ctx.now, ctx.options)
    given = None if ctx.weather is None else ctx.weather["outdoor_c"].reindex(ctx.steps)
    if given is not None and given.notna().any():
        filled = given.combine_first(forecast.values).rename("outdoor_c")
        method = f"weather forecast ({int(given.notna().sum())} of {len(given)} steps; "
        forecast = SeriesForecast(filled, method + f"the rest: {forecast.method})", forecast.notes)
    out.add(forecast)
    return past, forecast.values


def _pv(
    ctx: _Context,
    history: History | None,
    asset: PV,
    column: str,
    outdoor: tuple[pd.Series, pd.Series] | None,
    out: ScopeForecast,
) -> SeriesForecast:
    """The PV model chosen by backtest on the meter; clear sky × a default ratio without one."""
    options = ctx.options
    far = far_sun_note(
        column, options.latitude_deg, options.longitude_deg, ctx.site.tz, ctx.now.to_pydatetime()
    )
    try:
        if history is None:
            raise ForecastError(f"{column}: no PV meter")
        values, notes = clean_history(history, column, ctx.now, ctx.options)
    except ForecastError:
        fallback = forecast_pv(
            history, ctx.steps, column=column, peak_kw=asset.peak_kw, now=ctx.now,
            options=ctx.options,
        )  # fmt: skip
        return replace(fallback, notes=(*([far] if far else []), *fallback.notes))
    notes = [*([far] if far else []), *notes]
    out.metered[column] = metered_pv_kw(values)
    site = PvSite(asset.peak_kw, ctx.options.latitude_deg, ctx.options.longitude_deg)
    weather = _weather(ctx, outdoor)
    candidates = pv_candidates(history.meter, ctx.site.tz, site, weather, ctx.options)
    chosen = forecast_chosen(
        values, ctx.steps, column=column, now=ctx.now, tz=ctx.site.tz, candidates=candidates,
        label=f"{column} ({history.meter})", upper_kw=site.upper_kw(ctx.steps), cache=ctx.models,
        weather=weather, intraday_correction=ctx.intraday_correction,
    )  # fmt: skip
    return SeriesForecast(
        chosen.values, chosen.method, (*notes, *chosen.notes), chosen.low, chosen.high
    )


def _weather(ctx: _Context, outdoor: tuple[pd.Series, pd.Series] | None) -> pd.DataFrame | None:
    """The models' weather: outdoor temperature measured before now and forecast after, and
    the stored weather forecast's irradiance and cloud cover where there is one."""
    frame = pd.DataFrame(index=ctx.telemetry.index.union(ctx.steps))
    if outdoor is not None:
        past, future = outdoor
        frame["outdoor_c"] = past.combine_first(future)
    if ctx.weather is not None:
        for column in ("ghi_w_m2", "cloud_cover_pct"):
            if ctx.weather[column].notna().any():
                frame[column] = ctx.weather[column]
    return frame if len(frame.columns) else None


def _renewable(
    ctx: _Context,
    owner: Park | Building,
    asset: PV | Wind,
    unseparated: set[str],
    outdoor: tuple[pd.Series, pd.Series] | None,
    out: ScopeForecast,
) -> SeriesForecast:
    column = f"{asset.id}:available_kw"
    zero = pd.Series(0.0, index=ctx.steps, name=column)
    if asset.id in unseparated:
        return SeriesForecast(
            zero, f"0: its output is inside the {owner.id}:electricity_kw forecast"
        )
    meters = ctx.meters_of(owner.id)
    meter = pv_meter(meters, owner, asset) if isinstance(owner, Building) else None
    meter = meter or next((m for m in meters if m.asset_id == asset.id), None)
    history = ctx.telemetry.history(meter) if meter is not None else None
    if isinstance(asset, PV):
        return _pv(ctx, history, asset, column, outdoor, out)
    if history is None:
        return SeriesForecast(zero, "0", (f"{asset.id}: no meter; no wind assumed",))
    recent = history.values[history.values.index >= ctx.now - ctx.options.recent].mean()
    level = float(np.clip(np.nan_to_num(recent), 0.0, asset.peak_kw))
    method = f"persistence: mean of the last {ctx.options.recent}"
    return SeriesForecast(pd.Series(level, index=ctx.steps, name=column), method)


def _building(
    ctx: _Context,
    node: Node,
    building: Building,
    outdoor: tuple[pd.Series, pd.Series] | None,
    out: ScopeForecast,
) -> None:
    meters = ctx.meters_of(building.id)
    thermal: dict[str, pd.Series] = {}
    carriers: tuple[Literal["heat", "cooling"], ...] = ("heat", "cooling")
    for carrier in carriers:
        found = thermal_history(carrier, building, meters, ctx.telemetry, ctx.now, ctx.options)
        column = f"{building.id}:{carrier}_kw"
        if found is None:
            if node.produces(carrier):
                _unmetered(ctx, building, carrier, out)
            continue
        thermal[carrier] = found.history.values
        out.metered[column] = found.history.values
        out.notes += found.notes
        capacity = thermal_capacity_kw(building.assets, carrier) + ctx.district_kw[carrier]
        out.add(_capped(_demand(ctx, found.history, column, outdoor), capacity))
    past_c = outdoor[0] if outdoor is not None else None
    unseparated: set[str] = set()
    if electricity_mains(meters):
        electricity, unseparated = electricity_history(
            building, meters, ctx.telemetry, ctx.now, ctx.options, dict(thermal), past_c,
            out.unplanned,
        )  # fmt: skip
        out.notes += electricity.notes
        out.metered[f"{building.id}:electricity_kw"] = electricity.history.values
        out.add(_demand(ctx, electricity.history, f"{building.id}:electricity_kw", outdoor))
    else:
        _no_electricity_meter(ctx, building, out)
    for asset in building.assets:
        if isinstance(asset, PV | Wind):
            out.add(_renewable(ctx, building, asset, unseparated, outdoor, out))


def _capped(forecast: SeriesForecast, capacity_kw: float) -> SeriesForecast:
    """A thermal demand no more than the assets can serve; the excess would go unserved."""
    over = forecast.values > capacity_kw
    if not over.any():
        return forecast
    note = (
        f"{forecast.values.name}: the forecast exceeds the {capacity_kw:g} kW its assets can make "
        f"in {int(over.sum())} step(s) (up to {forecast.values.max():.0f} kW); capped, the rest "
        "would go unserved"
    )
    values = forecast.values.clip(upper=capacity_kw)
    low = None if forecast.low is None else forecast.low.clip(upper=capacity_kw)
    high = None if forecast.high is None else forecast.high.clip(upper=capacity_kw)
    return SeriesForecast(values, forecast.method, (*forecast.notes, note), low, high)


def _unmetered(
    ctx: _Context, building: Building, carrier: Literal["heat", "cooling"], out: ScopeForecast
) -> None:
    """No meter of a carrier the building's assets make: demand 0, those assets left alone."""
    column = f"{building.id}:{carrier}_kw"
    sources = HEAT_SOURCES if carrier == "heat" else COOLING_SOURCES
    assets = [
        a.id
        for a in building.assets
        if isinstance(a, sources) or (isinstance(a, ThermalStorage) and a.carrier == carrier)
    ]
    out.add(SeriesForecast(pd.Series(0.0, index=ctx.steps, name=column), "0: no meter"))
    out.unplanned.update(assets)
    out.notes.append(
        f"{building.id}: no {carrier} meter, so {column} is taken as 0 and no setpoints go to "
        f"{', '.join(assets)} (what they draw stays inside {building.id}:electricity_kw)"
    )


def _no_electricity_meter(ctx: _Context, building: Building, out: ScopeForecast) -> None:
    """No main electricity meter: the building's own load is unknown, taken as 0 (in a park plan
    of a park measured at its connection, it is inside the park's own demand); its assets are
    still planned on what is known (their tariffs, PV, the heat and cooling meters)."""
    column = f"{building.id}:electricity_kw"
    zero = pd.Series(0.0, index=ctx.steps, name=column)
    if ctx.park_load is not None:  # its park's own demand holds its load (and notes so)
        out.add(SeriesForecast(zero, f"0: no meter; its load is inside {ctx.park_load}"))
        return
    out.add(SeriesForecast(zero, "0: no meter"))
    out.notes.append(load_taken_as_0(building.id))


def _demand(
    ctx: _Context, history: History, column: str, outdoor: tuple[pd.Series, pd.Series] | None
) -> SeriesForecast:
    """The demand model chosen by backtest on this history (cleaned: NaN = left out)."""
    weather = _weather(ctx, outdoor)
    candidates = demand_candidates(history.meter, ctx.site.tz, weather, ctx.options)
    return forecast_chosen(
        history.values, ctx.steps, column=column, now=ctx.now, tz=ctx.site.tz,
        candidates=candidates, label=f"{column} ({history.meter})", cache=ctx.models,
        weather=weather, intraday_correction=ctx.intraday_correction,
    )  # fmt: skip


def _needs_outdoor(scope: Scope) -> str | None:
    for _, asset in scope.assets():
        if isinstance(getattr(asset, "cop_from_outdoor", None), CopFromOutdoor):
            return asset.id
    return None


async def forecast_scope(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    scope: Scope,
    steps: pd.DatetimeIndex,
    history: timedelta,
    options: ForecastOptions,
    models: ModelCache | None = None,
    intraday_correction: bool = True,
) -> ScopeForecast:
    """Forecast every input the scope's plan needs over `steps` from the history before them;
    `intraday_correction` False: day-ahead forecasts and bands only."""
    now = pd.Timestamp(steps[0])
    step = pd.Timedelta(steps[1] - steps[0])
    meters = await stored_meters(conn, sorted({n.id for n in scope.nodes} | {scope.park.id}))
    start = (now - pd.Timedelta(history)).to_pydatetime()
    telemetry = await read_telemetry(
        conn, backend, meters, start, now.to_pydatetime(), step, site.tz
    )
    shared = scope.park.assets if scope.level == "park" else []
    district = {c: thermal_capacity_kw(shared, c) for c in ("heat", "cooling")}
    end = (steps[-1] + step).to_pydatetime()
    stored = await read_weather(conn, scope.park.id, start, end, now.to_pydatetime())
    weather = None
    if not stored.empty:
        weather = stored.reindex(telemetry.index.union(steps))
    connected = scope.level == "park" and scope.park.measured_at_connection
    ctx = _Context(
        site, telemetry, meters, steps, now, options, district, models, weather,
        intraday_correction, f"{scope.park.id}:electricity_kw" if connected else None,
    )  # fmt: skip
    return await asyncio.to_thread(_forecast, ctx, scope)  # fits models: off the event loop


def _forecast(ctx: _Context, scope: Scope) -> ScopeForecast:
    """Every input of the scope's plan from what `_Context` read."""
    site, steps = ctx.site, ctx.steps
    index = pd.DatetimeIndex(steps, name="ts")
    out = ScopeForecast(
        pd.DataFrame(index=index), pd.DataFrame(index=index), pd.DataFrame(index=index)
    )
    for year in unknown_years(steps, site.tz):
        out.notes.append(
            f"calendar: chinese-calendar has no holiday schedule for {year}; working days are "
            "taken as Monday–Friday (update the package)"
        )
    outdoor = _outdoor(ctx, scope.park, out)
    needing = _needs_outdoor(scope)
    if outdoor is None and needing is not None:
        raise ForecastError(
            f"outdoor_c: no usable outdoor temperature sensor in {scope.park.id}, needed for "
            f"the COP of {needing} (cop_from_outdoor)"
        )
    for node in scope.nodes:
        found = site.find_building(node.id)
        if found is not None:
            _building(ctx, node, found[1], outdoor, out)
        else:
            unseparated = _park(ctx, scope.park, outdoor, out)
            for asset in node.assets:
                if isinstance(asset, PV | Wind):
                    out.add(_renewable(ctx, scope.park, asset, unseparated, outdoor, out))
    return out


def _park(
    ctx: _Context, park: Park, outdoor: tuple[pd.Series, pd.Series] | None, out: ScopeForecast
) -> set[str]:
    """The park's own electricity demand, forecast as a building's is (none without a main
    meter of its own); returns its renewables whose output stays inside it."""
    past_c = outdoor[0] if outdoor is not None else None
    found = park_electricity_history(park, ctx.meters, ctx.telemetry, ctx.now, ctx.options, past_c)
    if found is None:
        return set()
    electricity, unseparated = found
    column = f"{park.id}:electricity_kw"
    out.notes += electricity.notes
    out.metered[column] = electricity.history.values
    out.add(_demand(ctx, electricity.history, column, outdoor))
    return unseparated
