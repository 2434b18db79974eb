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
from energyhub.store.db import Backend
from energyhub.store.queries import LatestValue, latest_values, meter_series

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
    """Every meter's history on one regular UTC grid [start, end), NaN where nothing was stored."""

    index: pd.DatetimeIndex
    values: pd.DataFrame
    tz: ZoneInfo
    """The site's time zone (daily windows and profiles are local)."""

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
    """Per-meter series in kW (sensors in their unit) per step, from the rollups when they fit."""
    first, last = (pd.Timestamp(t).tz_convert("UTC") for t in (start, end))
    index = pd.date_range(first, last, freq=step, inclusive="left", name="ts")
    ids = [m.id for m in meters]
    frame = await meter_series(conn, backend, ids, start, end, step.to_pytimedelta())
    wide = frame.pivot_table(index="bucket", columns="meter_id", values="value", aggfunc="mean")
    return Telemetry(index, wide.reindex(index), tz)


async def latest_by_meter(
    conn: AsyncConnection, meters: list[StoredMeter]
) -> dict[int, LatestValue]:
    """The newest stored reading of each of these meters that has one."""
    return {v.meter_id: v for v in await latest_values(conn, [m.id for m in meters])}
