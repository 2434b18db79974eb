"""A counter's gap longer than a day: its energy lands in the first bucket after it on every path,
however the rollups were refreshed and wherever a query window starts (docs/meter-data.md)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from psycopg import AsyncConnection

from energyhub.carbon.accounting import carbon_report
from energyhub.sites import SiteFile
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, connect, installed_backend, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.migrations import migrate
from energyhub.store.queries import STEPS, meter_series, site_series
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter

ZONE = "Asia/Shanghai"
START = datetime(2026, 11, 20, tzinfo=ZoneInfo(ZONE))
WINDOW = (START, START + timedelta(days=4))
KW = 15.0
"""The counter rises 15 kWh an hour, read every hour except through a two-day gap."""
BEFORE = range(0, 24)  # hours from START
AFTER = range(72, 96)  # the gap is hours 23 to 72: 49 h, 735 kWh
TOTAL_KWH = KW * 95  # every step after the window's first reading


def _hours(hours: range | list[int]) -> list[datetime]:
    return [START + timedelta(hours=h) for h in hours]


async def _setup(url: str, site: SiteFile) -> tuple[int, Backend]:
    async with connect(url) as conn:
        await migrate(conn)
        await sync_site(conn, site)
        cur = await conn.execute(
            "SELECT id FROM meters WHERE site_id = 'b01' AND name = 'cooling' AND active"
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0]), await installed_backend(conn)


async def _ingest_and_refresh(
    url: str, backend: Backend, meter_id: int, hours: range | list[int]
) -> None:
    """Write the readings of these hours and refresh the rollups, as a live ingest does."""
    stamps = pd.DatetimeIndex(_hours(hours)).tz_convert(None).values
    values = [1000.0 + KW * h for h in hours]
    batch = ReadingBatch.from_columns(stamps, np.full(len(values), meter_id), values)
    async with open_pool(url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(batch)
    async with connect(url) as conn:
        await refresh_rollups(conn, backend)


async def _load(conn: AsyncConnection, backend: Backend, step: timedelta) -> pd.DataFrame:
    load = await site_series(conn, backend, "b01", *WINDOW, step, ZONE)
    return load[load.carrier == "cooling"].reset_index(drop=True)


async def test_a_gap_longer_than_a_day_counts_in_every_path_however_refreshed(
    store_url: str, example_site: SiteFile
) -> None:
    """Rollups refreshed in two chunks, the second starting after a 2-day gap, hold the gap's
    735 kWh in the bucket after it: the load equals a one-go refresh's and the carbon report's."""
    meter_id, backend = await _setup(store_url, example_site)
    await _ingest_and_refresh(store_url, backend, meter_id, BEFORE)
    await _ingest_and_refresh(store_url, backend, meter_id, AFTER)
    async with connect(store_url) as conn:
        chunked = {name: await _load(conn, backend, STEPS[name]) for name in ("15m", "1h")}
        report = await carbon_report(conn, backend, "b01", *WINDOW)
        per_meter = await meter_series(conn, backend, [meter_id], *WINDOW, STEPS["1h"], ZONE)
        await conn.execute(
            "SELECT energyhub_refresh_site_load(%s, %s)",
            (WINDOW[0] - timedelta(days=1), WINDOW[1] + timedelta(days=1)),
        )
        one_go = {name: await _load(conn, backend, STEPS[name]) for name in ("15m", "1h")}
    gap_end = pd.Timestamp(_hours([AFTER[0]])[0])
    for name in ("15m", "1h"):
        pd.testing.assert_frame_equal(chunked[name], one_go[name], check_exact=False, rtol=1e-12)
        load = chunked[name].set_index("bucket")
        assert load["energy_kwh"].sum() == pytest.approx(TOTAL_KWH, rel=1e-12), name
        assert load.loc[gap_end, "energy_kwh"] == pytest.approx(49 * KW, rel=1e-12), name
        assert load.loc[gap_end, "power_kw"] == pytest.approx(KW, rel=1e-12), name
    assert per_meter["energy_kwh"].sum() == pytest.approx(TOTAL_KWH, rel=1e-12)
    assert report.energy_kwh.cooling == pytest.approx(TOTAL_KWH, rel=1e-12)


async def test_a_window_starting_in_a_long_gap_gets_the_gaps_energy(
    store_url: str, example_site: SiteFile
) -> None:
    """A window from the gap's second day (25 h after its last reading) holds the whole gap's energy in its first bucket after
    the gap, from the meter series and the load rollup alike: the answer is not the window's."""
    meter_id, backend = await _setup(store_url, example_site)
    await _ingest_and_refresh(store_url, backend, meter_id, list(BEFORE) + list(AFTER))
    late = (START + timedelta(days=2), WINDOW[1])
    expected = KW * (AFTER[-1] - BEFORE[-1])
    async with connect(store_url) as conn:
        for name, step in STEPS.items():
            per_meter = await meter_series(conn, backend, [meter_id], *late, step, ZONE)
            load = await site_series(conn, backend, "b01", *late, step, ZONE)
            load = load[load.carrier == "cooling"]
            assert per_meter["energy_kwh"].sum() == pytest.approx(expected, rel=1e-12), name
            assert load["energy_kwh"].sum() == pytest.approx(expected, rel=1e-12), name


async def test_a_backfill_into_a_long_gap_moves_its_energy_out_of_the_bucket_after(
    store_url: str, example_site: SiteFile
) -> None:
    """A gateway's backlog of the gap's first hours, more than a day before the readings after
    the gap, arrives last: the bucket after the gap keeps only the rest, nothing counts twice."""
    meter_id, backend = await _setup(store_url, example_site)
    await _ingest_and_refresh(store_url, backend, meter_id, list(BEFORE) + list(AFTER))
    await _ingest_and_refresh(store_url, backend, meter_id, list(range(24, 36)))
    gap_end = pd.Timestamp(_hours([AFTER[0]])[0])
    async with connect(store_url) as conn:
        for name in ("15m", "1h"):
            load = (await _load(conn, backend, STEPS[name])).set_index("bucket")
            assert load["energy_kwh"].sum() == pytest.approx(TOTAL_KWH, rel=1e-12), name
            assert load.loc[gap_end, "energy_kwh"] == pytest.approx(37 * KW, rel=1e-12), name
