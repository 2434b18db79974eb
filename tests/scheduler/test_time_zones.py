"""A scheduler tick on sites in zones with daylight saving, across the nights the clocks change:
Berlin's 23 h spring day and Santiago's, whose midnight the clocks skip (2026-09-06 starts at
01:00)."""

from __future__ import annotations

from datetime import UTC, timedelta

import pandas as pd
import pytest

from energyhub.clock import ManualClock
from energyhub.sites import SiteFile, parse_site
from energyhub.store.db import connect

from .conftest import (
    SHARED_BROKER,
    office_load_kw,
    prepare_db,
    pv_kw,
    scheduler_for,
    scheduler_settings,
    site_doc,
    write_readings,
)


async def _site_with_history(
    pg_url: str, zone: str, index: pd.DatetimeIndex, outdoor_c: float
) -> SiteFile:
    """The test site in `zone`, loaded, with an office's readings over `index`."""
    doc = site_doc()
    doc["timezone"] = zone
    site = parse_site(doc, "test-site")
    await prepare_db(pg_url, site)
    readings = {
        "main": office_load_kw(index) - pv_kw(index),
        "pv": pv_kw(index),
        "bess-p": 0.0,
        "bess-soc": 50.0,
        "outdoor": outdoor_c,
    }
    await write_readings(pg_url, {k: pd.Series(v, index=index) for k, v in readings.items()})
    return site


@pytest.mark.parametrize(
    ("zone", "first_tick"),
    [("Europe/Berlin", "2026-03-28 22:00"), ("America/Santiago", "2026-09-05 21:00")],
)
async def test_ticks_replan_every_hour_across_the_clock_change(
    pg_url: str, prefix: str, zone: str, first_tick: str
) -> None:
    start = pd.Timestamp(first_tick, tz=zone)
    index = pd.date_range(
        (start - pd.Timedelta(days=10)).tz_convert("UTC"),
        (start + pd.Timedelta(hours=6)).tz_convert("UTC"),
        freq="15min",
        inclusive="left",
    )
    site = await _site_with_history(pg_url, zone, index, outdoor_c=12.0)
    settings = scheduler_settings(pg_url, SHARED_BROKER, prefix, scheduler_horizon_h=24)
    clock = ManualClock(start.to_pydatetime())
    starts = []
    async with scheduler_for(settings, site, clock) as scheduler, connect(pg_url) as conn:
        await scheduler.resume(conn)
        for _ in range(6):
            report = await scheduler.tick(conn)
            assert report.failed == [], report.failed  # Santiago: "nonexistent time" raised
            assert len(report.replanned) == 1
            starts.append(report.replanned[0].horizon_start.astimezone(UTC))
            await clock.advance(timedelta(hours=1))
    first = start.tz_convert("UTC").to_pydatetime()
    assert starts == [first + timedelta(hours=h) for h in range(6)]


async def test_hourly_steps_of_a_half_hour_zone_are_its_local_hours(
    pg_url: str, prefix: str
) -> None:
    """In India (+05:30) a 1-hour plan steps from local hours (:30 UTC): counted from the Unix
    epoch its steps ran 23:30–00:30, so a local day's first step straddled midnight and was in
    neither day, and a tariff period or flexible-load window from a whole hour lost half an hour."""
    zone = "Asia/Kolkata"
    start = pd.Timestamp("2026-03-29 00:10", tz=zone)  # 18:40 UTC
    index = pd.date_range(
        (start - pd.Timedelta(days=10)).tz_convert("UTC").floor("15min"),
        start.tz_convert("UTC"),
        freq="15min",
        inclusive="left",
    )
    site = await _site_with_history(pg_url, zone, index, outdoor_c=30.0)
    settings = scheduler_settings(
        pg_url, SHARED_BROKER, prefix, scheduler_horizon_h=6, scheduler_step="1h"
    )
    clock = ManualClock(start.to_pydatetime())
    async with scheduler_for(settings, site, clock) as scheduler, connect(pg_url) as conn:
        await scheduler.resume(conn)
        report = await scheduler.tick(conn)
        assert report.failed == [], report.failed
        wake = scheduler.next_wake(start.to_pydatetime())
        cur = await conn.execute(
            "SELECT DISTINCT ts FROM plan_steps WHERE plan_id = %s ORDER BY ts",
            (report.replanned[0].id,),
        )
        steps = [pd.Timestamp(ts).tz_convert(zone) for (ts,) in await cur.fetchall()]
    assert pd.Timestamp(report.replanned[0].horizon_start).tz_convert(zone) == pd.Timestamp(
        "2026-03-29 00:00", tz=zone
    )
    assert [t.strftime("%H:%M") for t in steps] == [f"{h:02d}:00" for h in range(6)]
    assert pd.Timestamp(wake).tz_convert(zone) == pd.Timestamp("2026-03-29 01:00", tz=zone)
