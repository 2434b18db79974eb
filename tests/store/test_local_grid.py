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
        per_meter = await meter_series(
            conn, Backend.POSTGRES, [meter_id], lo, hi, timedelta(hours=1)
        )
        per_site = await site_series(conn, Backend.POSTGRES, "office", lo, hi, timedelta(hours=1))
    hours = ["00:00", "01:00", "02:00", "03:00"]
    assert [t.tz_convert(KOLKATA).strftime("%H:%M") for t in per_meter["bucket"]] == hours
    assert per_meter["value"].to_numpy() == pytest.approx([15.0, 55.0, 95.0, 135.0])
    assert per_meter["samples"].tolist() == [4, 4, 4, 4]
    electricity = per_site[per_site["carrier"] == "electricity"]
    assert [t.tz_convert(KOLKATA).strftime("%H:%M") for t in electricity["bucket"]] == hours
    assert electricity["power_kw"].to_numpy() == pytest.approx([15.0, 55.0, 95.0, 135.0])
    assert electricity["energy_kwh"].to_numpy() == pytest.approx([15.0, 55.0, 95.0, 135.0])


def _two_buildings() -> dict[str, object]:
    def building(bid: str) -> dict[str, object]:
        return {"id": bid, "class": "office-A", "floor_area_m2": 1000, "meters": [
            {"id": f"{bid}-main", "carrier": "electricity", "quantity": "power_kw"},
            {"id": f"{bid}-heat", "carrier": "heat", "quantity": "energy_kwh"}]}  # fmt: skip

    park = {
        "id": "kp",
        "grid": {"import_max_kw": 5000},
        "buildings": [building("a"), building("b")],
    }
    return {"version": 1, "timezone": "Asia/Kolkata", "city": {"id": "kc", "parks": [park]}}


async def test_a_local_hour_is_what_a_utc_hour_of_the_same_readings_is(pg_url: str) -> None:
    """Building a's readings from local midnight (18:30 UTC), b's the same 30 minutes later (on
    UTC hours, read from the hourly rollup): every hourly figure of a is b's. The power meter
    samples ten times in the first quarter of an hour and once in each other: the hour's kW is
    the mean of its 13 samples (169.2), as the rollup says, not the quarters' kW averaged (325)."""
    await prepare_db(pg_url, parse_site(_two_buildings(), "kolkata"))
    start = pd.Timestamp("2026-03-29", tz=KOLKATA)
    minutes = [*range(0, 60, 5), *range(60, 70), 75, 90, 105, *range(120, 240, 5)]
    power = [100.0 if 60 <= m < 70 else 400.0 if m in (75, 90, 105) else 200.0 for m in minutes]
    ticks = [m for m in range(0, 240, 5) if not 130 <= m < 160]  # the counter is silent 30 min
    heat = np.cumsum([5.0 + (m % 60) / 5 for m in ticks])
    series = {}
    for bid, shift in (("a", 0), ("b", 30)):
        at = pd.DatetimeIndex([start + pd.Timedelta(minutes=m + shift) for m in minutes])
        series[f"{bid}-main"] = pd.Series(power, index=at.tz_convert("UTC"))
        at = pd.DatetimeIndex([start + pd.Timedelta(minutes=m + shift) for m in ticks])
        series[f"{bid}-heat"] = pd.Series(heat, index=at.tz_convert("UTC"))
    await write_readings(pg_url, series)
    hour = timedelta(hours=1)
    async with connect(pg_url) as conn:
        cur = await conn.execute("SELECT name, id FROM meters")
        ids = dict(await cur.fetchall())
        got = {}
        for bid, shift in (("a", 0), ("b", 30)):
            lo = (start + pd.Timedelta(minutes=shift)).to_pydatetime()
            hi = lo + 4 * hour
            meters = [ids[f"{bid}-main"], ids[f"{bid}-heat"]]
            got[bid] = (
                await meter_series(conn, Backend.POSTGRES, meters, lo, hi, hour),
                await site_series(conn, Backend.POSTGRES, bid, lo, hi, hour),
            )
    (a_meters, a_site), (b_meters, b_site) = got["a"], got["b"]
    assert a_meters["bucket"].dt.minute.unique().tolist() == [30]  # 18:30 UTC: local hours
    assert a_meters["bucket"].dt.tz_convert(KOLKATA).dt.minute.unique().tolist() == [0]
    figures = ["value", "samples", "energy_kwh", "covered_s"]
    assert len(a_meters) == len(b_meters) == 8
    for column in figures:
        assert a_meters[column].to_numpy() == pytest.approx(
            b_meters[column].to_numpy(), nan_ok=True
        )
    main = a_meters[a_meters["meter_id"] == ids["a-main"]]
    assert main["value"].iloc[1] == pytest.approx((10 * 100.0 + 3 * 400.0) / 13)
    for column in ("power_kw", "energy_kwh", "covered_s"):
        assert a_site[column].to_numpy() == pytest.approx(b_site[column].to_numpy(), nan_ok=True)
    assert a_site["carrier"].tolist() == b_site["carrier"].tolist()


async def test_an_hourly_series_from_any_start_is_on_the_zones_local_hours(pg_url: str) -> None:
    """GET /sites/{id}/load?step=1h without a start begins 24 h before now, at no hour: in India
    its buckets were UTC hours, :30 local. Asked in the site's zone they are local hours from
    the first one at or after the start (as the rollup's from the first UTC hour); asked in UTC
    they stay UTC hours."""
    doc = site_doc()
    doc["timezone"] = "Asia/Kolkata"
    await prepare_db(pg_url, parse_site(doc, "test-site"))
    start = pd.Timestamp("2026-03-29", tz=KOLKATA)  # 18:30 UTC
    index = pd.date_range(start, periods=16, freq="15min").tz_convert("UTC")
    await write_readings(pg_url, {"main": pd.Series(np.arange(16.0) * 10.0, index=index)})
    lo = (start + pd.Timedelta(minutes=7, seconds=33)).to_pydatetime()
    hi = (start + pd.Timedelta(hours=4)).to_pydatetime()
    hour = timedelta(hours=1)
    async with connect(pg_url) as conn:
        local = await site_series(conn, Backend.POSTGRES, "office", lo, hi, hour, "Asia/Kolkata")
        utc = await site_series(conn, Backend.POSTGRES, "office", lo, hi, hour)
    local = local[local["carrier"] == "electricity"]
    hours = ["01:00", "02:00", "03:00"]
    assert [t.tz_convert(KOLKATA).strftime("%H:%M") for t in local["bucket"]] == hours
    assert local["power_kw"].to_numpy() == pytest.approx([55.0, 95.0, 135.0])
    utc = utc[utc["carrier"] == "electricity"]
    assert [t.strftime("%H:%M") for t in utc["bucket"]] == ["19:00", "20:00", "21:00", "22:00"]


def test_a_grid_on_a_day_whose_midnight_the_clocks_skip_or_repeat() -> None:
    """Santiago skips 2026-09-06 00:00 and Havana repeats 2026-11-01 00:00: the local grid's
    origin is found from the day's start as energyhub.localdays places it, not an error."""
    from datetime import datetime

    from energyhub.store.queries import _grid_origin

    for start, zone in (("2026-09-06T12:00Z", "America/Santiago"),
                        ("2026-11-01T12:00Z", "America/Havana")):  # fmt: skip
        for step in (timedelta(minutes=15), timedelta(hours=1)):
            origin = _grid_origin(datetime.fromisoformat(start), step, zone)
            assert origin is None or origin >= datetime.fromisoformat(start)
