"""Series on a local grid of a zone whose offset is not whole hours (India, +05:30): the hourly
rollup's buckets are UTC hours, so a local hour is read from the quarter hours it holds."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from energyhub.sites import parse_site
from energyhub.store.db import Backend, connect
from energyhub.store.queries import meter_series, site_series
from tests.scheduler.conftest import prepare_db, site_doc, write_readings

KOLKATA = ZoneInfo("Asia/Kolkata")


async def test_hourly_series_from_a_local_hour_are_the_local_hours(pg_url: str) -> None:
    doc = site_doc()
    doc["timezone"] = "Asia/Kolkata"
    await prepare_db(pg_url, parse_site(doc, "test-site"))
    start = pd.Timestamp("2026-03-29", tz=KOLKATA)  # 18:30 UTC
    index = pd.date_range(start, periods=16, freq="15min").tz_convert("UTC")
    await write_readings(pg_url, {"main": pd.Series(np.arange(16.0) * 10.0, index=index)})
    lo, hi = start.to_pydatetime(), (start + pd.Timedelta(hours=4)).to_pydatetime()
    async with connect(pg_url) as conn:
        cur = await conn.execute("SELECT id FROM meters WHERE name = 'main'")
        (meter_id,) = await cur.fetchone() or (0,)
        per_meter = await meter_series(conn, Backend.POSTGRES, [meter_id], lo, hi, timedelta(hours=1))
        per_site = await site_series(conn, Backend.POSTGRES, "office", lo, hi, timedelta(hours=1))
    hours = ["00:00", "01:00", "02:00", "03:00"]
    assert [t.tz_convert(KOLKATA).strftime("%H:%M") for t in per_meter["bucket"]] == hours
    assert per_meter["value"].to_numpy() == pytest.approx([15.0, 55.0, 95.0, 135.0])
    assert per_meter["samples"].tolist() == [4, 4, 4, 4]
    electricity = per_site[per_site["carrier"] == "electricity"]
    assert [t.tz_convert(KOLKATA).strftime("%H:%M") for t in electricity["bucket"]] == hours
    assert electricity["power_kw"].to_numpy() == pytest.approx([15.0, 55.0, 95.0, 135.0])
    assert electricity["energy_kwh"].to_numpy() == pytest.approx([15.0, 55.0, 95.0, 135.0])
