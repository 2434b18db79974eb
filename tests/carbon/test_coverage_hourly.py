"""Coverage of meters read less often than the report's 15-min intervals: a utility's hourly
interval data, CityLearn's homes. A reading covers the intervals up to it since the one before."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from energyhub.carbon.accounting import carbon_report
from energyhub.sites import parse_site
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import connect, installed_backend, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter
from tests.carbon.conftest import SITE

ZONE = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 10, 5, tzinfo=ZONE)


def _site() -> dict[str, object]:
    doc = copy.deepcopy(SITE)
    building = {"id": "h1", "class": "office-A", "floor_area_m2": 200,
                "meters": [{"id": "main", "carrier": "electricity", "quantity": "energy_kwh"}]}  # fmt: skip
    doc["city"]["parks"][0]["buildings"] = [building]  # type: ignore[index]
    return doc


async def test_an_hourly_counter_covers_its_hours(pg_url: str) -> None:
    """An hourly counter, read every hour but at 11:00, 12:00 and 13:00: 3 missing hours (12
    intervals from 11:00 to 14:00), not 3 of every 4 intervals (the report said 23 % coverage for a fully read CityLearn meter, and
    its longest gaps were the 45 min between two readings)."""
    hours = pd.date_range(DAY - timedelta(hours=1), DAY + timedelta(days=1), freq="1h")
    hours = hours[~((hours > DAY + timedelta(hours=10)) & (hours <= DAY + timedelta(hours=13)))]
    values = 1000.0 + 2.0 * np.arange(len(hours))
    async with connect(pg_url) as conn:
        await migrate(conn)
        await sync_site(conn, parse_site(_site()))
        cur = await conn.execute("SELECT id FROM meters WHERE site_id = 'h1'")
        (meter_id,) = await cur.fetchone() or (0,)
        backend = await installed_backend(conn)
    utc = hours.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[us]")
    async with open_pool(pg_url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(
            ReadingBatch.from_columns(utc, [meter_id] * len(hours), values)
        )
    async with connect(pg_url) as conn:
        await refresh_rollups(conn, backend)
        report = await carbon_report(conn, backend, "h1", DAY, DAY + timedelta(days=1))
    coverage = report.coverage
    assert (coverage.expected_intervals, coverage.present_intervals) == (96, 96 - 12)
    (main,) = coverage.incomplete
    assert (main.meter, main.missing_intervals) == ("h1/main", 12)
    (gap,) = main.longest_gaps
    assert (gap.start, gap.end, gap.intervals) == (
        DAY + timedelta(hours=11),
        DAY + timedelta(hours=14),
        12,
    )
