"""Panels of a park in a zone whose offset is not whole hours (India, +05:30; Nepal, +05:45) group
its local hours: the hourly rollup's buckets are UTC hours (05:30–06:30 in India), so an hourly
panel reads the quarter hours each local hour holds, as store/queries.py's series on a local grid
do; a day's group starts at local midnight."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import psycopg
import pytest

from energyhub.grafana import building, carbon, park
from energyhub.sites import parse_site
from energyhub.store.db import Backend, connect
from energyhub.store.queries import site_series
from tests.grafana.macros import Chosen, TimeRange, expand
from tests.grafana.test_values import _moment
from tests.scheduler.conftest import prepare_db, site_doc, write_readings

KOLKATA = ZoneInfo("Asia/Kolkata")
START = pd.Timestamp("2026-03-29", tz=KOLKATA)  # 18:30 UTC
HOURS = ["00:00", "01:00", "02:00", "03:00"]
MEANS_KW = [15.0, 55.0, 95.0, 135.0]
"""The means of 0, 10, …, 150 kW (one reading a quarter hour), four quarter hours at a time."""


def _panel(
    url: str, text: str, interval: str, hours: int = 4, start: pd.Timestamp = START
) -> list[tuple]:
    chosen = {"park": Chosen(("sp",), False), "building": Chosen(("office",), True)}
    rng = TimeRange(start.to_pydatetime(), (start + pd.Timedelta(hours=hours)).to_pydatetime())
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(expand(text, chosen, rng, interval, False).encode()).fetchall()


def _local(rows: list[tuple], zone: ZoneInfo = KOLKATA) -> list[str]:
    return [_moment(row[0]).tz_convert(zone).strftime("%H:%M") for row in rows]


def _build(url: str, start: pd.Timestamp) -> str:
    """The scheduler tests' site in `start`'s zone, its main meter at 0, 10, …, 150 kW."""
    doc = site_doc()
    doc["timezone"] = str(start.tz)

    async def build() -> None:
        await prepare_db(url, parse_site(doc, "test-site"))
        index = pd.date_range(start, periods=16, freq="15min").tz_convert("UTC")
        await write_readings(url, {"main": pd.Series(np.arange(16.0) * 10.0, index=index)})

    asyncio.run(build())
    return url


@pytest.fixture
def kolkata_db(pg_url: str) -> str:
    return _build(pg_url, START)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (building.POWER_BY_CARRIER, 2),
        (building.SELECTED_METERS, 2),
        (park.LOAD_PER_BUILDING, 2),
        (park.PARK_IMPORT, 1),
    ],
    ids=["building-power", "selected-meters", "park-load", "park-import"],
)
def test_hourly_panels_group_local_hours(kolkata_db: str, text: str, value: int) -> None:
    if text is building.SELECTED_METERS:
        with psycopg.connect(kolkata_db) as conn:
            (meter_id,) = conn.execute("SELECT id FROM meters WHERE name = 'main'").fetchone() or (
                0,
            )
        text = text.replace("$meter", str(meter_id))
    rows = _panel(kolkata_db, text, "1h")
    assert _local(rows) == HOURS
    assert [row[value] for row in rows] == pytest.approx(MEANS_KW)


def test_an_hourly_panel_agrees_with_the_stores_local_hours(kolkata_db: str) -> None:
    async def series() -> pd.DataFrame:
        async with connect(kolkata_db) as conn:
            return await site_series(
                conn,
                Backend.POSTGRES,
                "office",
                START.to_pydatetime(),
                (START + pd.Timedelta(hours=4)).to_pydatetime(),
                timedelta(hours=1),
                "Asia/Kolkata",
            )

    stored = asyncio.run(series())
    stored = stored[stored["carrier"] == "electricity"]
    rows = _panel(kolkata_db, building.POWER_BY_CARRIER, "1h")
    assert [_moment(row[0]) for row in rows] == list(stored["bucket"])
    assert [row[2] for row in rows] == pytest.approx(stored["power_kw"].tolist())


def test_emissions_by_hour_are_local_hours(kolkata_db: str) -> None:
    rows = _panel(kolkata_db, carbon.BY_CARRIER, "1h")
    assert _local(rows) == HOURS
    grid_kg_per_kwh = 0.5306
    assert [row[1] for row in rows] == pytest.approx([kw * grid_kg_per_kwh for kw in MEANS_KW])


def test_a_daily_panel_groups_the_local_day(kolkata_db: str) -> None:
    """A day's group starts at local midnight (18:30 UTC), not at 00:00 UTC (05:30 there)."""
    rows = _panel(kolkata_db, building.POWER_BY_CARRIER, "1d", hours=24)
    assert _local(rows) == ["00:00"]
    assert rows[0][2] == pytest.approx(np.mean(np.arange(16.0) * 10.0))


def test_a_quarter_hour_zone_groups_its_local_hours(pg_url: str) -> None:
    kathmandu = ZoneInfo("Asia/Kathmandu")
    start = pd.Timestamp("2026-03-29", tz=kathmandu)  # 18:15 UTC
    _build(pg_url, start)
    rows = _panel(pg_url, building.POWER_BY_CARRIER, "1h", start=start)
    assert _local(rows, kathmandu) == HOURS
    assert [row[2] for row in rows] == pytest.approx(MEANS_KW)


def test_a_daily_panel_of_a_whole_hour_zone_groups_the_local_day(pg_url: str) -> None:
    """Shanghai's day starts at 16:00 UTC, where Grafana's `$__timeGroup` would start it at 08:00
    local; its hours are the hourly rollup's."""
    shanghai = ZoneInfo("Asia/Shanghai")
    start = pd.Timestamp("2026-03-29", tz=shanghai)
    _build(pg_url, start)
    daily = _panel(pg_url, building.POWER_BY_CARRIER, "1d", hours=24, start=start)
    assert _local(daily, shanghai) == ["00:00"]
    assert daily[0][2] == pytest.approx(np.mean(np.arange(16.0) * 10.0))
    hourly = _panel(pg_url, building.POWER_BY_CARRIER, "1h", start=start)
    assert _local(hourly, shanghai) == HOURS
    assert [row[2] for row in hourly] == pytest.approx(MEANS_KW)
