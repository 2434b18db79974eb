"""The inputs a plan would have had with perfect foresight: demands and renewables as metered.

Over some steps, each building's electricity demand is its metered net draw with what the plan
dispatches taken back out (its battery, heat pumps and chillers; PV added back), exactly as the
scheduler reconstructs demand histories to forecast from (energyhub.scheduler.demand); heat and
cooling demand are its heat and cooling meters; PV and wind are their meters. A park with a main
electricity meter of its own has its own demand, as the scheduler forecasts it
(`park_electricity_history`). Prices are the plan's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

import numpy as np
import pandas as pd
from psycopg import AsyncConnection

from energyhub.optimize.forecast import ForecastError, ForecastOptions, History, clean_history
from energyhub.optimize.scope import Node, Scope
from energyhub.optimize.unserved import unserved_column
from energyhub.plans.bill import PRICE_COLUMNS
from energyhub.scheduler.demand import (
    electricity_history,
    electricity_mains,
    outdoor_meter,
    park_electricity_history,
    pv_meter,
    thermal_capacity_kw,
    thermal_history,
    unserved_thermal,
)
from energyhub.scheduler.telemetry import StoredMeter, Telemetry, read_telemetry, stored_meters
from energyhub.sites import PV, Building, CopFromOutdoor, Park, SiteFile, Wind
from energyhub.store.db import Backend

RENEWABLE_CAP = 1.2
"""Metered renewable output above this many times peak_kw is cut there (as the inputs check)."""


@dataclass
class MeteredInputs:
    """A plan inputs table (UTC steps) built from the meters, and what was assumed."""

    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def _options(step: pd.Timedelta) -> ForecastOptions:
    """No history requirement beyond one reading, gaps of up to an hour filled, any silence."""
    return ForecastOptions(min_history=step.to_pytimedelta(), max_silence=timedelta(days=3660))


def _renewable(
    owner: Park | Building, asset: PV | Wind, meters: list[StoredMeter], telemetry: Telemetry
) -> pd.Series | None:
    meter = pv_meter(meters, owner, asset) if isinstance(owner, Building) else None
    meter = meter or next((m for m in meters if m.asset_id == asset.id), None)
    if meter is None:
        return None
    return telemetry.series(meter).clip(lower=0.0, upper=asset.peak_kw * RENEWABLE_CAP)


def _building(
    ctx: tuple[Telemetry, pd.Timestamp, ForecastOptions, pd.Series | None],
    node: Node,
    building: Building,
    meters: list[StoredMeter],
    district_kw: dict[str, float],
    out: MeteredInputs,
    *,
    inside: bool = False,
) -> dict[str, pd.Series]:
    """`inside`: the building's park is measured at its connection and planned whole, so a
    building without a main has its load inside the park's own demand (its column is 0)."""
    telemetry, now, options, outdoor = ctx
    columns: dict[str, pd.Series] = {}
    thermal: dict[str, pd.Series] = {}
    unplanned: set[str] = set()
    carriers: tuple[Literal["heat", "cooling"], ...] = ("heat", "cooling")
    for carrier in carriers:
        found = thermal_history(carrier, building, meters, telemetry, now, options)
        column = f"{building.id}:{carrier}_kw"
        if found is None:
            if node.produces(carrier):
                columns[column] = pd.Series(0.0, index=telemetry.index)
                out.notes.append(
                    f"{column}: no {carrier} meter at {building.id}, taken as 0 by the "
                    f"counterfactual and perfect foresight (what its {carrier} assets drew stays "
                    f"in {building.id}:electricity_kw); a {carrier} meter without asset: would "
                    "let them be compared"
                )
            continue
        capacity = thermal_capacity_kw(building.assets, carrier) + district_kw[carrier]
        thermal[carrier] = found.history.values.clip(lower=0.0, upper=capacity)
        columns[column] = thermal[carrier]
        left = unserved_thermal(
            carrier, building, meters, telemetry, (thermal[carrier], capacity), now, options
        )
        if left is not None and left.max() > 0:  # perfect foresight may leave as much unserved
            columns[unserved_column(building.id, carrier)] = left
    unseparated: set[str] = set()
    if inside and not electricity_mains(meters):  # its load is inside its park's own demand
        columns[f"{building.id}:electricity_kw"] = pd.Series(0.0, index=telemetry.index)
    else:
        demand, unseparated = electricity_history(
            building, meters, telemetry, now, options, dict(thermal), outdoor, unplanned
        )
        columns[f"{building.id}:electricity_kw"] = demand.history.values.clip(lower=0.0)
    for asset in building.assets:
        if isinstance(asset, PV | Wind):
            series = (
                None if asset.id in unseparated else _renewable(building, asset, meters, telemetry)
            )
            columns[f"{asset.id}:available_kw"] = (
                series if series is not None else pd.Series(0.0, index=telemetry.index)
            )
    return columns


@dataclass(frozen=True, slots=True)
class ReadSpan:
    """A scope's meters and their telemetry read once over a span, for every metered_inputs
    inside it: a month's lead-in reads the meters once, not once per day and run."""

    meters: list[StoredMeter]
    telemetry: Telemetry

    def within(
        self, first: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta
    ) -> Telemetry | None:
        """The telemetry of [first, end) on the grid of `step`, as read_telemetry reads it
        there; None if that is not inside the span or not on its grid."""
        index = self.telemetry.index
        if len(index) < 2 or pd.Timedelta(index[1] - index[0]) != step:
            return None
        if first < index[0] or end > index[-1] + step or (first - index[0]) % step:
            return None
        inside = pd.date_range(first, end, freq=step, inclusive="left", name="ts")
        sent = self.telemetry.sent
        return Telemetry(
            inside,
            self.telemetry.values.reindex(inside),
            self.telemetry.tz,
            None if sent is None else sent.reindex(inside),
        )


async def read_span(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    scope: Scope,
    index: pd.DatetimeIndex,
) -> ReadSpan:
    """The telemetry every metered_inputs over steps within `index` (UTC, regular) reads."""
    step = pd.Timedelta(index[1] - index[0])
    meters = await stored_meters(conn, sorted({n.id for n in scope.nodes} | {scope.park.id}))
    telemetry = await read_telemetry(
        conn, backend, meters, (index[0] - step).to_pydatetime(),
        (index[-1] + step).to_pydatetime(), step, site.tz,
    )  # fmt: skip
    return ReadSpan(meters, telemetry)


async def metered_inputs(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    scope: Scope,
    index: pd.DatetimeIndex,
    plan_inputs: pd.DataFrame,
    span: ReadSpan | None = None,
) -> MeteredInputs:
    """The scope's inputs over `index` (UTC, regular) as metered; ForecastError names a meter
    without readings there. `span`: telemetry already read over a span holding `index`."""
    step = pd.Timedelta(index[1] - index[0])
    before = index[0] - step  # one step more, for SOC changes
    sliced = None if span is None else span.within(before, index[-1] + step, step)
    if span is not None and sliced is not None:
        meters, telemetry = span.meters, sliced
    else:
        meters = await stored_meters(conn, sorted({n.id for n in scope.nodes} | {scope.park.id}))
        telemetry = await read_telemetry(
            conn, backend, meters, before.to_pydatetime(), (index[-1] + step).to_pydatetime(),
            step, site.tz,
        )  # fmt: skip
    now = index[-1] + step
    options = _options(step)
    out = MeteredInputs(pd.DataFrame(index=index))
    outdoor: pd.Series | None = None
    sensor = outdoor_meter(meters, scope.park.id)
    if sensor is not None and telemetry.series(sensor).notna().any():
        outdoor, _ = clean_history(
            History(telemetry.series(sensor), sensor.label), "outdoor_c", now, options
        )
        out.frame["outdoor_c"] = outdoor.reindex(index)
    elif any(
        isinstance(getattr(a, "cop_from_outdoor", None), CopFromOutdoor) for _, a in scope.assets()
    ):
        raise ForecastError(f"outdoor_c: no outdoor temperature readings in {scope.park.id}")
    shared = scope.park.assets if scope.level == "park" else []
    district = {c: thermal_capacity_kw(shared, c) for c in ("heat", "cooling")}
    connected = scope.level == "park" and scope.park.measured_at_connection
    for node in scope.nodes:
        found = site.find_building(node.id)
        if found is not None:
            mine = [m for m in meters if m.site_id == node.id]
            ctx = (telemetry, now, options, outdoor)
            columns = _building(ctx, node, found[1], mine, district, out, inside=connected)
            for name, series in columns.items():
                out.frame[name] = series.reindex(index)
        else:
            park = park_electricity_history(scope.park, meters, telemetry, now, options, outdoor)
            if park is not None:  # its renewables without a meter (inside it) come out as 0
                out.frame[f"{node.id}:electricity_kw"] = park[0].history.values.reindex(index)
                out.notes += park[0].notes
            for asset in node.assets:
                if isinstance(asset, PV | Wind):
                    output = _renewable(scope.park, asset, meters, telemetry)
                    out.frame[f"{asset.id}:available_kw"] = (
                        output.reindex(index) if output is not None else 0.0
                    )
    for name in PRICE_COLUMNS:
        if name in plan_inputs.columns:
            out.frame[name] = plan_inputs[name].reindex(index).ffill().bfill()
    return out


async def metered_outdoor(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    scope: Scope,
    index: pd.DatetimeIndex,
    span: ReadSpan | None = None,
) -> pd.Series | None:
    """The outdoor temperature over `index` (UTC, regular) from the sensor metered_inputs reads,
    cleaned as it cleans it; None without a sensor or a reading there. `span`: telemetry
    already read over a span that may hold `index`."""
    step = pd.Timedelta(index[1] - index[0])
    sliced = None if span is None else span.within(index[0], index[-1] + step, step)
    if span is not None and sliced is not None:
        meters, telemetry = span.meters, sliced
    else:
        meters = await stored_meters(conn, sorted({n.id for n in scope.nodes} | {scope.park.id}))
    sensor = outdoor_meter(meters, scope.park.id)
    if sensor is None:
        return None
    if sliced is None:
        telemetry = await read_telemetry(
            conn, backend, [sensor], index[0].to_pydatetime(),
            (index[-1] + step).to_pydatetime(), step, site.tz,
        )  # fmt: skip
    if not telemetry.series(sensor).notna().any():
        return None
    outdoor, _ = clean_history(
        History(telemetry.series(sensor), sensor.label), "outdoor_c", index[-1] + step,
        _options(step),
    )  # fmt: skip
    return outdoor.reindex(index)


def complete_steps(frame: pd.DataFrame) -> pd.Series:
    """Steps where every column is known."""
    return pd.Series(np.asarray(frame.notna().all(axis=1)), index=frame.index)
