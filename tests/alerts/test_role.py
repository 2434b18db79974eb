"""The battery-SOC and night-time base load rules evaluated by the running alerts role."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from energyhub.alerts.service import run_alerts
from energyhub.clock import ManualClock
from energyhub.config import Settings
from energyhub.sites import SiteFile
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, connect, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.writer import ReadingWriter

from .conftest import alert_rows, alert_settings, publish_power, running, site_with, wait_rows
from .test_live import collect

OFF = {"enabled": False}
PARK = {"silence": OFF, "ingest": OFF}
SOC = {"silence": OFF, "limit": OFF, "soc": {"for_min": 0.01, "clear_min": 0}}
NIGHT = {
    "silence": OFF,
    "limit": OFF,
    "night_base": {"min_nights": 2, "margin": 0.25, "for_min": 0, "clear_min": 0},
}
MIDNIGHT = datetime(2026, 11, 20, 16, tzinfo=UTC)  # 00:00 on the 21st in Shanghai
GRACE_S = 30


async def test_soc_outside_its_window_opens_and_closes_with_hysteresis(
    site_db: str, prefix: str
) -> None:
    settings = alert_settings(site_db, prefix)
    heard: list[dict[str, Any]] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(collect(f"{prefix}/p1/b1/alert", heard, ready))
    await asyncio.wait_for(ready.wait(), 10)
    async with running(settings, site_with(PARK, SOC)):
        await publish_power(prefix, "soc", [50.0, 40.0, 30.0], 0.1)  # inside [10, 90] %
        await asyncio.sleep(0.5)
        assert await wait_rows(site_db, "soc", lambda r: r == [], 1) == []
        await publish_power(prefix, "soc", [8.0] * 8, 0.1)  # below soc_min 0.1
        rows = await wait_rows(site_db, "soc", lambda r: len(r) == 1, 5)
        assert rows[0][1:3] == ("b1", "bat") and rows[0][5]["soc_pct"] == 8.0
        assert rows[0][5]["low_pct"] == 10.0 and rows[0][5]["high_pct"] == 90.0
        await publish_power(prefix, "soc", [10.5] * 5, 0.1)  # inside, but not by the 1 % margin
        assert (await wait_rows(site_db, "soc", lambda r: len(r) == 1, 1))[0][4] is None
        await publish_power(prefix, "soc", [20.0] * 3, 0.1)
        rows = await wait_rows(site_db, "soc", lambda r: r[0][4] is not None, 5)
        for _ in range(100):
            if len(heard) >= 2:
                break
            await asyncio.sleep(0.05)
    listener.cancel()
    assert len(rows) == 1
    assert [(m["event"], m["rule"], m["subject"]) for m in heard] == [
        ("opened", "soc", "bat"),
        ("closed", "soc", "bat"),
    ]


async def write_night(url: str, meter_id: int, start: datetime, kw: float) -> None:
    """00:00-06:00 local of 1-minute readings at `kw`, then the rollups refreshed."""
    ts = pd.date_range(start, periods=6 * 60, freq="1min").tz_convert(None).values
    batch = ReadingBatch.from_columns(ts, np.full(len(ts), meter_id), np.full(len(ts), kw))
    async with open_pool(url, max_size=1) as pool:
        await ReadingWriter(pool, Backend.POSTGRES).write(batch)
    async with connect(url) as conn:
        await refresh_rollups(conn, Backend.POSTGRES)


@asynccontextmanager
async def role(settings: Settings, site: SiteFile, clock: ManualClock) -> AsyncIterator[None]:
    """`run_alerts` (the `energyhub alerts` role) on a clock the test moves."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_alerts(settings, site, clock, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def test_night_base_load_learnt_flagged_and_remembered_across_a_restart(
    site_db: str, prefix: str
) -> None:
    settings = alert_settings(site_db, prefix, alerts_rollup_grace_s=GRACE_S)
    site = site_with(PARK, NIGHT)
    async with connect(site_db) as conn:
        row = await (await conn.execute("SELECT id FROM meters WHERE name = 'main'")).fetchone()
    assert row is not None
    main = int(row[0])
    heard: list[dict[str, Any]] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(collect(f"{prefix}/p1/b1/alert", heard, ready))
    await asyncio.wait_for(ready.wait(), 10)

    clock = ManualClock(MIDNIGHT - timedelta(hours=1))
    async with role(settings, site, clock):
        for night, kw in enumerate([100.0, 110.0, 200.0]):
            start = MIDNIGHT + timedelta(days=night)
            await write_night(site_db, main, start, kw)
            assert (
                await alert_rows(site_db, "night_base") == []
            )  # judged only once 2 nights are learnt
            await clock.set(start + timedelta(hours=6, seconds=GRACE_S))
        rows = await wait_rows(site_db, "night_base", lambda r: len(r) == 1, 5)
    opened = rows[0]
    assert opened[1:3] == ("b1", "") and opened[4] is None
    assert opened[3] == MIDNIGHT + timedelta(days=2, hours=6, seconds=GRACE_S)
    assert opened[5]["night_kw"] == 200.0 and opened[5]["usual_kw"] == 105.0
    assert opened[5]["threshold_kw"] == 131.25

    # A new role process: the usual level and the open alert come back from the database.
    clock = ManualClock(MIDNIGHT + timedelta(days=3) - timedelta(hours=1))
    async with role(settings, site, clock):
        start = MIDNIGHT + timedelta(days=3)
        await write_night(site_db, main, start, 100.0)
        await clock.set(start + timedelta(hours=6, seconds=GRACE_S))
        rows = await wait_rows(site_db, "night_base", lambda r: r[0][4] is not None, 5)
        for _ in range(100):
            if len(heard) >= 2:
                break
            await asyncio.sleep(0.05)
    listener.cancel()
    assert len(rows) == 1
    assert rows[0][4] == start + timedelta(hours=6, seconds=GRACE_S)
    async with connect(site_db) as conn:
        cur = await conn.execute("SELECT closing_values FROM alerts WHERE rule = 'night_base'")
        closing: dict[str, Any] = (await cur.fetchone() or [{}])[0]
        state = await (await conn.execute("SELECT state FROM alert_state")).fetchone()
    # usual after 3 nights is 105 + 95/3; the 4th night (100 kW) is judged against its 125 %.
    assert closing["night_kw"] == 100.0
    assert abs(closing["usual_kw"] - (105 + 95 / 3)) < 1e-9
    assert state is not None and state[0]["nights"] == 4
    assert [(m["event"], m["rule"]) for m in heard] == [
        ("opened", "night_base"),
        ("closed", "night_base"),
    ]
