"""What the scheduler reads from the store: the scope's meters, their histories, latest values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from psycopg import AsyncConnection
from psycopg.rows import class_row

from energyhub.forecast.profile import History
from energyhub.plans.store import site_setpoints
from energyhub.store.db import Backend
from energyhub.store.queries import (
    STATE_QUANTITIES,
    LatestValue,
    latest_values,
    meter_series,
    meter_state_series,
)

LOAD_QUANTITIES = ("power_kw", "energy_kwh")


@dataclass(frozen=True, slots=True)
class StoredMeter:
    """An active meter as `sites load` stored it."""

    id: int
    site_id: str
    name: str
    carrier: str
    quantity: str
    asset_id: str | None
    submeter: bool

    @property
    def label(self) -> str:
        return f"{self.site_id}/{self.name}"

    @property
    def measures_load(self) -> bool:
        """A top-level power or energy meter that measures no single asset."""
        return self.quantity in LOAD_QUANTITIES and self.asset_id is None and not self.submeter


async def stored_meters(conn: AsyncConnection, site_ids: list[str]) -> list[StoredMeter]:
    """The active meters of these parks and buildings, by site and name."""
    cur = conn.cursor(row_factory=class_row(StoredMeter))
    await cur.execute(
        "SELECT id, site_id, name, carrier, quantity, asset_id, "
        "parent_meter_id IS NOT NULL AS submeter FROM meters "
        "WHERE active AND site_id = ANY(%s) ORDER BY site_id, name",
        (site_ids,),
    )
    return await cur.fetchall()


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Every meter's history on one regular UTC grid [start, end), NaN where nothing was stored:
    a power meter's mean kW per step, a state's (SOC) value at the step's end."""

    index: pd.DatetimeIndex
    values: pd.DataFrame
    tz: ZoneInfo
    """The site's time zone (daily windows and profiles are local)."""
    sent: pd.DataFrame | None = None
    """The setpoints sent to the sites' devices (kW, one column per asset id) on the same grid:
    a step's mean where every setpoint of it was sent, NaN where any was not."""

    def sent_kw(self, asset_id: str) -> pd.Series:
        """What was sent to the asset per step (NaN where the device ran its own rule)."""
        if self.sent is not None and asset_id in self.sent.columns:
            return self.sent[asset_id]
        return pd.Series(np.nan, index=self.index, name=asset_id)

    def series(self, meter: StoredMeter) -> pd.Series:
        if meter.id in self.values.columns:
            return self.values[meter.id].rename(meter.label)
        return pd.Series(np.nan, index=self.index, name=meter.label)

    def history(self, meter: StoredMeter) -> History:
        return History(self.series(meter), meter.label)


async def read_telemetry(
    conn: AsyncConnection,
    backend: Backend,
    meters: list[StoredMeter],
    start: datetime,
    end: datetime,
    step: pd.Timedelta,
    tz: ZoneInfo,
) -> Telemetry:
    """Per-meter series in kW (sensors in their unit, states such as SOC at each step's end) per
    step, from the rollups when they fit."""
    first, last = (pd.Timestamp(t).tz_convert("UTC") for t in (start, end))
    index = pd.date_range(first, last, freq=step, inclusive="left", name="ts")
    window = (start, end, step.to_pytimedelta())
    states = [m.id for m in meters if m.quantity in STATE_QUANTITIES]
    others = [m.id for m in meters if m.quantity not in STATE_QUANTITIES]
    columns = ["bucket", "meter_id", "value"]
    frame = await meter_series(conn, backend, others, *window)
    if states:
        at_end = await meter_state_series(conn, backend, states, *window)
        frame = pd.concat([frame[columns], at_end[columns]], ignore_index=True)
    wide = frame.pivot_table(index="bucket", columns="meter_id", values="value", aggfunc="mean")
    sites = sorted({m.site_id for m in meters})
    sent = sent_on_grid(await site_setpoints(conn, sites, start, end), index, step)
    return Telemetry(index, wide.reindex(index), tz, sent)


def sent_on_grid(sent: pd.DataFrame, index: pd.DatetimeIndex, step: pd.Timedelta) -> pd.DataFrame:
    """Sent setpoints (asset_id, ts, p_kw) per grid step: the mean where all of it was sent."""
    if sent.empty:
        return pd.DataFrame(index=index)
    ts = pd.DatetimeIndex(pd.to_datetime(sent["ts"], utc=True))
    setpoint_step = ts.to_series().diff().dropna()
    setpoint_step = setpoint_step[setpoint_step > pd.Timedelta(0)]
    per_bucket = max(1, round(step / setpoint_step.min())) if len(setpoint_step) else 1
    bucket = index[0] + (ts - index[0]) // step * step  # the grid's steps, not UTC's
    grouped = sent.assign(bucket=bucket).groupby(["bucket", "asset_id"])["p_kw"]
    mean = grouped.mean().where(grouped.count() >= per_bucket)
    return mean.unstack("asset_id").reindex(index)


async def latest_by_meter(
    conn: AsyncConnection, meters: list[StoredMeter]
) -> dict[int, LatestValue]:
    """The newest stored reading of each of these meters that has one."""
    return {v.meter_id: v for v in await latest_values(conn, [m.id for m in meters])}
