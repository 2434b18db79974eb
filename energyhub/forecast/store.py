"""What the forecasts keep in the database: plan bands, their measured coverage, weather forecasts.

SQL lives here; callers pass and get pandas frames on UTC steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

WEATHER_COLUMNS = ("outdoor_c", "ghi_w_m2", "cloud_cover_pct")


async def save_bands(
    conn: AsyncConnection, plan_id: int, low: pd.DataFrame, high: pd.DataFrame
) -> int:
    """The P10/P90 of each banded column of a plan's forecast; returns the rows written."""
    rows = 0
    async with conn.cursor().copy(
        "COPY plan_forecast_bands (plan_id, ts, name, p10, p90) FROM STDIN"
    ) as copy:
        for name in low.columns:
            p10 = low[name].to_numpy(dtype=float)
            p90 = high[name].to_numpy(dtype=float)
            for ts, a, b in zip(low.index, p10, p90, strict=True):
                if np.isfinite(a) and np.isfinite(b):
                    await copy.write_row((plan_id, ts.to_pydatetime(), name, float(a), float(b)))
                    rows += 1
    return rows


async def plan_bands(conn: AsyncConnection, plan_id: int) -> pd.DataFrame:
    """A plan's bands, long: ts, name, p10, p90 (empty for a plan stored without them)."""
    cur = await conn.execute(
        "SELECT ts, name, p10, p90 FROM plan_forecast_bands WHERE plan_id = %s ORDER BY name, ts",
        (plan_id,),
    )
    return pd.DataFrame(await cur.fetchall(), columns=["ts", "name", "p10", "p90"])


async def issued_bands(
    conn: AsyncConnection, site_id: str, start: datetime, end: datetime
) -> pd.DataFrame:
    """For each column and step in [start, end), the band of the newest plan of the site issued
    at or before that step (long: ts, name, p10, p90)."""
    cur = await conn.execute(
        "SELECT DISTINCT ON (b.name, b.ts) b.ts, b.name, b.p10, b.p90 "
        "FROM plan_forecast_bands b JOIN plans p ON p.id = b.plan_id "
        "JOIN plan_forecasts f ON f.plan_id = b.plan_id "
        "WHERE p.site_id = %s AND b.ts >= %s AND b.ts < %s AND f.issued_at <= b.ts "
        "ORDER BY b.name, b.ts, f.issued_at DESC, b.plan_id DESC",
        (site_id, start, end),
    )
    frame = pd.DataFrame(await cur.fetchall(), columns=["ts", "name", "p10", "p90"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


async def save_coverage(conn: AsyncConnection, plan_id: int, coverage: dict[str, Any]) -> None:
    """How many metered values of earlier plans fell inside their band, kept with this plan."""
    await conn.execute(
        "UPDATE plan_forecasts SET band_coverage = %s WHERE plan_id = %s",
        (Jsonb(coverage), plan_id),
    )


@dataclass(frozen=True, slots=True)
class LatestForecast:
    """The newest stored plan forecast of a site: its plan, when issued, methods and notes."""

    plan_id: int
    status: str
    issued_at: datetime
    methods: dict[str, str]
    notes: list[str]
    band_coverage: dict[str, Any]


async def latest_forecast(conn: AsyncConnection, site_id: str) -> LatestForecast | None:
    """The newest plan of the site that was stored with a forecast."""
    cur = await conn.execute(
        "SELECT p.id, p.status, f.issued_at, f.methods, f.notes, f.band_coverage "
        "FROM plan_forecasts f JOIN plans p ON p.id = f.plan_id WHERE p.site_id = %s "
        "ORDER BY f.issued_at DESC, p.id DESC LIMIT 1",
        (site_id,),
    )
    row = await cur.fetchone()
    return None if row is None else LatestForecast(*row)


async def stored_forecast(conn: AsyncConnection, plan_id: int) -> LatestForecast | None:
    """The forecast a plan was stored with (None for a plan made elsewhere)."""
    cur = await conn.execute(
        "SELECT p.id, p.status, f.issued_at, f.methods, f.notes, f.band_coverage "
        "FROM plan_forecasts f JOIN plans p ON p.id = f.plan_id WHERE p.id = %s",
        (plan_id,),
    )
    row = await cur.fetchone()
    return None if row is None else LatestForecast(*row)


async def save_weather(
    conn: AsyncConnection, park_id: str, issued_at: datetime, frame: pd.DataFrame, source: str
) -> int:
    """Forecast weather of a park (UTC steps × WEATHER_COLUMNS, NaN = not given) as issued."""
    rows = [
        (park_id, pd.Timestamp(ts).to_pydatetime(), issued_at, *values, source)
        for ts, *values in frame.reindex(columns=list(WEATHER_COLUMNS)).itertuples()
    ]
    clean = [
        (*r[:3], *(None if v is None or not np.isfinite(v) else float(v) for v in r[3:6]), r[6])
        for r in rows
    ]
    clean = [r for r in clean if any(v is not None for v in r[3:6])]
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO weather_forecasts (park_id, ts, issued_at, outdoor_c, ghi_w_m2, "
            "cloud_cover_pct, source) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (park_id, ts, issued_at) DO UPDATE SET outdoor_c = EXCLUDED.outdoor_c, "
            "ghi_w_m2 = EXCLUDED.ghi_w_m2, cloud_cover_pct = EXCLUDED.cloud_cover_pct, "
            "source = EXCLUDED.source",
            clean,
        )
    return len(clean)


async def read_weather(
    conn: AsyncConnection, park_id: str, start: datetime, end: datetime, issued_by: datetime
) -> pd.DataFrame:
    """The newest issue made at or before `issued_by` of each step in [start, end), wide."""
    cur = await conn.execute(
        "SELECT DISTINCT ON (ts) ts, outdoor_c, ghi_w_m2, cloud_cover_pct FROM weather_forecasts "
        "WHERE park_id = %s AND ts >= %s AND ts < %s AND issued_at <= %s "
        "ORDER BY ts, issued_at DESC",
        (park_id, start, end, issued_by),
    )
    frame = pd.DataFrame(await cur.fetchall(), columns=["ts", *WEATHER_COLUMNS])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame.set_index("ts").astype(float)
