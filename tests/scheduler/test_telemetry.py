"""What the scheduler reads besides the meters: the setpoints sent to the devices, on its grid."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from energyhub.scheduler.telemetry import read_telemetry, stored_meters
from energyhub.sites import parse_site
from energyhub.store.db import Backend, connect
from tests.scheduler.conftest import prepare_db, site_doc, write_readings
from tests.scheduler.test_actual import START, STEP, run_steps

TZ = ZoneInfo("Asia/Shanghai")


async def test_sent_setpoints_on_the_grid_where_every_step_was_sent(pg_url: str) -> None:
    """Three steps sent: each on a 15-min grid; on a 30-min grid the first bucket is their mean
    and the second (one of two steps sent) is unknown, as is every asset without setpoints."""
    await run_steps(pg_url, "auto", 3)
    async with connect(pg_url) as conn:
        cur = await conn.execute(
            "SELECT asset_id, p_kw FROM setpoints WHERE asset_id = 'office-bess' ORDER BY ts"
        )
        sent = [float(p) for _, p in await cur.fetchall()]
        meters = await stored_meters(conn, ["office"])
        end = START + timedelta(hours=1)
        fine = await read_telemetry(
            conn, Backend.POSTGRES, meters, START, end, pd.Timedelta(STEP), TZ
        )
        coarse = await read_telemetry(
            conn, Backend.POSTGRES, meters, START, end, pd.Timedelta(minutes=30), TZ
        )
    assert len(sent) == 3
    assert fine.sent_kw("office-bess").to_numpy()[:3] == pytest.approx(sent)
    assert np.isnan(fine.sent_kw("office-bess").iloc[3])
    assert coarse.sent_kw("office-bess").iloc[0] == pytest.approx((sent[0] + sent[1]) / 2)
    assert np.isnan(coarse.sent_kw("office-bess").iloc[1])
    assert fine.sent_kw("no-such-asset").isna().all()


async def test_an_hourly_grid_of_a_half_hour_zone_reads_its_local_hours(pg_url: str) -> None:
    """In India (+05:30) a local hour starts at :30 UTC, where the hourly rollup has no bucket:
    the forecast backtest at 1 h and the realized savings found no reading at all."""
    kolkata = ZoneInfo("Asia/Kolkata")
    doc = site_doc()
    doc["timezone"] = "Asia/Kolkata"
    await prepare_db(pg_url, parse_site(doc, "test-site"))
    start = pd.Timestamp("2026-03-29", tz=kolkata)  # 18:30 UTC
    index = pd.date_range(start, periods=16, freq="15min").tz_convert("UTC")
    main = pd.Series(np.arange(16, dtype=float) * 10.0, index=index)
    await write_readings(pg_url, {"main": main})
    async with connect(pg_url) as conn:
        meters = [m for m in await stored_meters(conn, ["office"]) if m.label == "office/main"]
        hourly = await read_telemetry(
            conn, Backend.POSTGRES, meters, start.to_pydatetime(),
            (start + pd.Timedelta(hours=4)).to_pydatetime(), pd.Timedelta(hours=1), kolkata,
        )  # fmt: skip
    series = hourly.series(meters[0])
    assert [t.tz_convert(kolkata).strftime("%H:%M") for t in series.index] == [
        "00:00", "01:00", "02:00", "03:00"
    ]  # fmt: skip
    assert series.to_numpy() == pytest.approx([15.0, 55.0, 95.0, 135.0])  # each hour's mean
