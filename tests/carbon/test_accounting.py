"""Accounting against hand-computed totals on the readings described in conftest.py.

Factors for 2026 come from the city's 2025 entry (grid 0.5) and its flat values (gas 0.2, heat
0.4 kg/kWh); carbon 100 CNY/t; the `flat` tariff 0.65 CNY/kWh; gas 4.0 CNY/Nm³ ÷ 10 kWh/Nm³.
"""

import copy
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from psycopg import AsyncConnection

from energyhub.carbon.accounting import CarbonReport, carbon_report
from energyhub.carbon.errors import (
    NoDataError,
    NoMetersError,
    UnknownFactorYearError,
    UnknownSiteError,
)
from energyhub.carbon.intensity import read_intensity_csv, store_intensity
from energyhub.carbon.periods import parse_period, previous_period
from energyhub.sites import parse_site
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, connect, installed_backend, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter
from tests.carbon.conftest import BEFORE, DAY, SITE, load

END = DAY + timedelta(days=1)

# b1 on D, by hand
ELECTRICITY = 100 * 22  # 100 kW for 24 h less the 2 h gap: not interpolated
HEAT = 10 * 96 - 10  # +10 per interval; the rollover interval counts 10, the reset interval 0
GAS = 5 * 96  # the gap's energy is carried by the counter into the interval after it
PV = 40 * 8
B1_KG = ELECTRICITY * 0.5 + HEAT * 0.4 + GAS * 0.2  # 1100 + 380 + 96 = 1576
B1_BEFORE_KG = 2400 * 0.5 + 960 * 0.4 + 480 * 0.2  # 1680
B2_KG = 50 * 24 * 0.5
B3_KG = 30 * 24 * 0.5


@pytest.fixture
async def conn(carbon_url: str) -> AsyncIterator[AsyncConnection]:
    async with connect(carbon_url) as connection:
        yield connection


@pytest.fixture
async def backend(conn: AsyncConnection) -> Backend:
    return await installed_backend(conn)


async def report(conn: AsyncConnection, backend: Backend, site_id: str) -> CarbonReport:
    return await carbon_report(conn, backend, site_id, DAY, END)


async def test_building_totals_equal_the_hand_computation(
    conn: AsyncConnection, backend: Backend
) -> None:
    b1 = await report(conn, backend, "b1")
    assert b1.energy_kwh.model_dump() == pytest.approx(
        {"electricity": ELECTRICITY, "heat": HEAT, "cooling": 0.0, "gas": GAS}
    )
    assert b1.scope1_kg == pytest.approx(GAS * 0.2)
    assert b1.scope2_electricity_kg == pytest.approx(ELECTRICITY * 0.5)
    assert b1.scope2_heat_kg == pytest.approx(HEAT * 0.4)  # no heat-making asset: bought heat
    assert b1.total_kg == pytest.approx(B1_KG)
    assert (b1.pv_kwh, b1.avoided_kg) == pytest.approx((PV, PV * 0.5))  # reported, not netted
    assert b1.intensity_kg_per_m2 == pytest.approx(B1_KG / 10000)
    assert b1.cost_cny.model_dump() == pytest.approx(
        {
            "electricity": ELECTRICITY * 0.65,
            "export_credit": 0.0,
            "gas": GAS * 0.4,
            "heat": 0.0,  # no heat price declared
            "cooling": 0.0,
            "carbon": B1_KG * 0.1,
            "total": ELECTRICITY * 0.65 + GAS * 0.4 + B1_KG * 0.1,
        }
    )
    assert (b1.factors.factor_year, b1.factors.grid_kg_per_kwh) == (2025, 0.5)
    assert [d.day.isoformat() for d in b1.daily] == ["2026-10-05"]


async def test_coverage_names_the_gaps_and_trend_compares_the_previous_day(
    conn: AsyncConnection, backend: Backend
) -> None:
    b1 = await report(conn, backend, "b1")
    coverage = b1.coverage
    assert (coverage.meters, coverage.expected_intervals) == (6, 6 * 96)
    assert coverage.present_intervals == 6 * 96 - 16
    gaps = {m.meter: m.longest_gaps[0] for m in coverage.incomplete}
    assert set(gaps) == {"b1/main", "b1/gas"}
    assert gaps["b1/main"].start == DAY + timedelta(hours=10)
    assert (gaps["b1/gas"].start, gaps["b1/gas"].intervals) == (DAY + timedelta(hours=16), 8)
    assert any("Nothing is interpolated" in note for note in b1.notes)
    assert (b1.trend.previous_start, b1.trend.previous_end) == (BEFORE, DAY)
    assert b1.trend.previous_total_kg == pytest.approx(B1_BEFORE_KG)
    assert b1.trend.change_kg == pytest.approx(B1_KG - B1_BEFORE_KG)


async def test_tenants_and_the_building_share_add_up_to_the_building(
    conn: AsyncConnection, backend: Backend
) -> None:
    b1 = await report(conn, backend, "b1")
    lines = {line.site_id: line for line in b1.lines}
    assert [(line.site_id, line.kind) for line in b1.lines] == [
        ("tenant-a", "tenant"),
        ("tenant-b", "tenant"),
        ("b1", "common"),
    ]
    remainder_kg = B1_KG - 480 * 0.5 - 240 * 0.5  # less the tenants' sub-metered electricity
    assert lines["tenant-a"].metered_kg == pytest.approx(240)
    assert lines["tenant-a"].allocated_kg == pytest.approx(0.2 * remainder_kg)  # 2000 of 10000 m²
    assert lines["tenant-b"].total_kg == pytest.approx(120 + 0.3 * remainder_kg)
    assert lines["b1"].total_kg == pytest.approx(0.5 * remainder_kg)
    for field in ("total_kg", "scope1_kg", "scope2_kg", "pv_kwh", "avoided_kg"):
        assert sum(getattr(line, field) for line in b1.lines) == pytest.approx(getattr(b1, field))
    for carrier in ("electricity", "heat", "gas"):
        assert sum(getattr(line.energy_kwh, carrier) for line in b1.lines) == pytest.approx(
            getattr(b1.energy_kwh, carrier)
        )
    assert sum(line.cost_cny.total for line in b1.lines) == pytest.approx(b1.cost_cny.total)
    tenant = await report(conn, backend, "tenant-a")
    assert tenant.total_kg == pytest.approx(lines["tenant-a"].total_kg)
    assert tenant.cost_cny.total == pytest.approx(lines["tenant-a"].cost_cny.total)
    assert tenant.intensity_kg_per_m2 == pytest.approx(tenant.total_kg / 2000)


async def test_buildings_add_up_to_their_park_and_parks_to_the_city(
    conn: AsyncConnection, backend: Backend
) -> None:
    p1 = await report(conn, backend, "p1")
    buildings = [await report(conn, backend, b) for b in ("b1", "b2")]
    assert p1.total_kg == pytest.approx(B1_KG + B2_KG)
    assert p1.total_kg == pytest.approx(sum(b.total_kg for b in buildings))
    assert p1.cost_cny.total == pytest.approx(sum(b.cost_cny.total for b in buildings))
    assert {line.site_id: line.total_kg for line in p1.lines} == pytest.approx(
        {"b1": B1_KG, "b2": B2_KG, "b4": 0.0}
    )
    assert "b4: no energy meters, so nothing of it is in the totals" in p1.notes
    assert p1.floor_area_m2 == 16000
    city = await report(conn, backend, "testcity")
    assert city.total_kg == pytest.approx(B1_KG + B2_KG + B3_KG)
    assert [line.site_id for line in city.lines] == ["p1", "p2"]
    assert sum(line.total_kg for line in city.lines) == pytest.approx(city.total_kg)


async def test_target_position_to_date_and_projected(
    conn: AsyncConnection, backend: Backend
) -> None:
    b1 = await report(conn, backend, "b1")
    target = b1.target
    assert target is not None
    # to date (hourly): the reset hour keeps the 20 kWh read before the reset (issue #19)
    to_date = B1_BEFORE_KG + B1_KG
    assert target.emissions_to_date_kg == pytest.approx(to_date)
    assert target.projected_year_kg == pytest.approx(to_date + B1_KG * 87)  # 6 Oct → 31 Dec
    assert target.position_to_date_kg == pytest.approx(500000 - to_date)
    assert target.position_projected_cny == pytest.approx((500000 - to_date - B1_KG * 87) / 10)
    assert not target.exceeds_target
    tenant = await report(conn, backend, "tenant-a")
    assert tenant.target is not None and tenant.target.exceeds_target  # 20 t a year
    assert any("exceeds the target" in note for note in tenant.notes)
    assert (await report(conn, backend, "b2")).target is None


async def test_bad_input_is_named(conn: AsyncConnection, backend: Backend) -> None:
    with pytest.raises(NoDataError, match=r"no readings for site 'b1' from 2026-11-01"):
        start, end = parse_period("2026-11", "Asia/Shanghai")
        await carbon_report(conn, backend, "b1", start, end)
    with pytest.raises(NoMetersError, match="site 'b4' has no energy meters"):
        await report(conn, backend, "b4")
    with pytest.raises(UnknownSiteError, match="unknown site 'nowhere'"):
        await report(conn, backend, "nowhere")
    with pytest.raises(UnknownFactorYearError, match="unknown factor year 2019"):
        await carbon_report(conn, backend, "b1", DAY, END, factor_year=2019)
    old = await carbon_report(conn, backend, "b2", DAY, END, factor_year=2020)
    assert old.total_kg == pytest.approx(50 * 24 * 0.9)


async def test_an_hourly_grid_series_prices_the_hours_it_covers(pg_url: str) -> None:
    data = copy.deepcopy(SITE)
    data["city"]["parks"][0]["buildings"][1]["carbon"] = {"grid_series": "sh-hourly"}
    await load(pg_url, parse_site(data))
    async with connect(pg_url) as conn:
        hours = pd.date_range(DAY, periods=12, freq="1h").tz_convert("UTC")
        await store_intensity(conn, "sh-hourly", pd.DataFrame({"ts": hours, "kg_per_kwh": 0.8}))
        backend = await installed_backend(conn)
        b2 = await carbon_report(conn, backend, "b2", DAY, END)
        p1 = await carbon_report(conn, backend, "p1", DAY, END)
    assert b2.total_kg == pytest.approx(600 * 0.8 + 600 * 0.5)
    assert (b2.factors.grid_series, b2.factors.grid_series_share) == ("sh-hourly", 0.5)
    assert p1.total_kg == pytest.approx(B1_KG + b2.total_kg)
    assert any(note.startswith("b2: uses its own factors") for note in p1.notes)


async def test_an_hourly_series_of_local_hours_prices_a_half_hour_zone(pg_url: str) -> None:
    """In India (+05:30) the grid operator's hours start at :30 UTC: a series written in local
    time (`2026-10-05T00:00:00+05:30`, as the importer asks) prices each quarter hour of its
    local hour, not none of them (the quarter hours were matched to UTC hours only)."""
    data = copy.deepcopy(SITE)
    data["timezone"] = "Asia/Kolkata"
    data["city"]["parks"][0]["buildings"][1]["carbon"] = {"grid_series": "in-hourly"}
    await load(pg_url, parse_site(data))
    start = pd.Timestamp("2026-10-05", tz="Asia/Kolkata")  # 2026-10-04 18:30 UTC
    hours = pd.date_range(start, periods=12, freq="1h").tz_convert("UTC")
    async with connect(pg_url) as conn:
        await store_intensity(conn, "in-hourly", pd.DataFrame({"ts": hours, "kg_per_kwh": 0.8}))
        backend = await installed_backend(conn)
        end = start + pd.Timedelta(hours=12)
        b2 = await carbon_report(conn, backend, "b2", start.to_pydatetime(), end.to_pydatetime())
        later = start + pd.Timedelta(hours=6, minutes=15)  # a window from inside a local hour
        part = await carbon_report(conn, backend, "b2", later.to_pydatetime(), end.to_pydatetime())
    assert (b2.factors.grid_series, b2.factors.grid_series_share) == ("in-hourly", 1.0)
    assert b2.total_kg == pytest.approx(50 * 12 * 0.8)
    assert part.factors.grid_series_share == pytest.approx(1.0)
    assert part.total_kg == pytest.approx(50 * 5.75 * 0.8)


@pytest.mark.parametrize(
    ("first_hour", "label"),
    [("2026-10-04T18:00:00Z", "UTC's hours"), ("2026-10-04T18:30:00Z", "local hours in UTC")],
)
async def test_an_india_series_on_either_grid_prices_every_quarter_hour(
    pg_url: str, tmp_path: Path, first_hour: str, label: str
) -> None:
    """A +05:30 site's series on UTC's hours (18:00Z is 23:30 local) or on its own written in
    UTC (18:30Z is 00:00 local; refused as no hour's start) loads and prices each quarter hour
    by the value whose hour holds it; loaded over the series on the other grid (written in
    +05:30) it replaces it (each quarter hour took the value begun last: half the old 0.8)."""
    data = copy.deepcopy(SITE)
    data["timezone"] = "Asia/Kolkata"
    data["city"]["parks"][0]["buildings"][1]["carbon"] = {"grid_series": "in-hourly"}
    await load(pg_url, parse_site(data))
    start = pd.Timestamp("2026-10-05", tz="Asia/Kolkata")  # 2026-10-04 18:30 UTC
    end = start + pd.Timedelta(hours=12)
    hours = pd.date_range(pd.Timestamp(first_hour), periods=13, freq="1h")
    other = (hours + pd.Timedelta(minutes=30)).tz_convert("Asia/Kolkata")  # the other grid
    files = {}
    for name, index, kg in (("other", other, 0.8), ("series", hours, 0.4)):
        files[name] = tmp_path / f"{name}.csv"
        text = "".join(f"{ts.isoformat().replace('+00:00', 'Z')},{kg}\n" for ts in index)
        files[name].write_text("ts,kg_per_kwh\n" + text)
    async with connect(pg_url) as conn:
        await store_intensity(conn, "in-hourly", read_intensity_csv(files["other"]).frame)
        found = read_intensity_csv(files["series"])
        stored = await store_intensity(conn, "in-hourly", found.frame)
        backend = await installed_backend(conn)
        b2 = await carbon_report(conn, backend, "b2", start.to_pydatetime(), end.to_pydatetime())
    assert found.problems == [], label
    assert (stored.written, stored.replaced) == (13, 13)
    assert b2.factors.grid_series_share == pytest.approx(1.0)
    assert b2.total_kg == pytest.approx(50 * 12 * 0.4)


def test_periods_in_local_time() -> None:
    start, end = parse_period("2026-10", "Asia/Shanghai")
    assert (start.isoformat(), end.isoformat()) == (
        "2026-10-01T00:00:00+08:00",
        "2026-11-01T00:00:00+08:00",
    )
    assert (
        previous_period(start, end, "Asia/Shanghai")[0].isoformat() == "2026-09-01T00:00:00+08:00"
    )
    jan = parse_period("2026-01", "Asia/Shanghai")
    assert previous_period(*jan, "Asia/Shanghai")[0].isoformat() == "2025-12-01T00:00:00+08:00"
    assert parse_period("2026", "UTC")[1].isoformat() == "2027-01-01T00:00:00+00:00"
    assert parse_period("2026-12-31", "UTC")[1].isoformat() == "2027-01-01T00:00:00+00:00"


@pytest.mark.parametrize("main_meter", [None, "own-loads"])
async def test_a_park_s_connection_meter_is_its_electricity_not_added_to_its_buildings(
    pg_url: str, main_meter: str | None
) -> None:
    """p2's own main meter (45 kW) is its connection: b3's 30 kW are part of it, so p2 and the
    city count 45 kW, the park's own line the 15 kW beside b3, and the lines add up. Declared
    `own-loads`, it measures the park beside b3: 45 + 30 kW."""
    data = copy.deepcopy(SITE)
    p2 = data["city"]["parks"][1]
    p2["meters"] = [{"id": "conn", "carrier": "electricity", "quantity": "power_kw"}]
    if main_meter is not None:
        p2["main_meter"] = main_meter
    own_kw, park_kw = (15, 45) if main_meter is None else (45, 75)
    await load(pg_url, parse_site(data))
    async with connect(pg_url) as conn:
        backend = await installed_backend(conn)
        cur = await conn.execute("SELECT id FROM meters WHERE site_id = 'p2' AND name = 'conn'")
        meter_id = int((await cur.fetchall())[0][0])
        steps = pd.date_range(BEFORE, periods=192, freq="15min").tz_convert("UTC")
        async with open_pool(pg_url, max_size=1) as pool:
            await ReadingWriter(pool, backend).write(
                ReadingBatch.from_columns(
                    steps.tz_convert(None).values, [meter_id] * 192, [45.0] * 192
                )
            )
        await refresh_rollups(conn, backend)
        park = await report(conn, backend, "p2")
        city = await report(conn, backend, "testcity")
        b3 = await report(conn, backend, "b3")
    assert b3.total_kg == pytest.approx(B3_KG)
    assert park.total_kg == pytest.approx(park_kw * 24 * 0.5)  # connection: not (45 + 30) kW
    assert {line.site_id: line.total_kg for line in park.lines} == pytest.approx(
        {"b3": B3_KG, "p2": own_kw * 24 * 0.5}
    )
    assert city.total_kg == pytest.approx(B1_KG + B2_KG + park_kw * 24 * 0.5)


async def test_a_retired_park_main_keeps_its_history_counted_once(pg_url: str) -> None:
    """p2's connection meter read 45 kW until noon of the day and was then removed from the site
    file: until noon p2 bought the connection's 45 kW (b3's 30 kW part of it), after noon b3's
    30 kW; never 45 + 30 kW. The lines still add up: b3 its own, p2's own 15 kW until noon."""
    data = copy.deepcopy(SITE)
    p2 = data["city"]["parks"][1]
    p2["meters"] = [{"id": "conn", "carrier": "electricity", "quantity": "power_kw"}]
    await load(pg_url, parse_site(data))
    steps = pd.date_range(BEFORE, DAY + timedelta(hours=12), freq="15min", inclusive="left")
    async with connect(pg_url) as conn:
        backend = await installed_backend(conn)
        cur = await conn.execute("SELECT id FROM meters WHERE site_id = 'p2' AND name = 'conn'")
        meter_id = int((await cur.fetchall())[0][0])
        async with open_pool(pg_url, max_size=1) as pool:
            await ReadingWriter(pool, backend).write(
                ReadingBatch.from_columns(
                    steps.tz_convert("UTC").tz_convert(None).values,
                    [meter_id] * len(steps),
                    [45.0] * len(steps),
                )
            )
        await refresh_rollups(conn, backend)
        assert (await sync_site(conn, parse_site(copy.deepcopy(SITE)))).retired == ["p2/conn"]
        park = await report(conn, backend, "p2")
        city = await report(conn, backend, "testcity")
    park_kg = (45 * 12 + 30 * 12) * 0.5
    assert park.total_kg == pytest.approx(park_kg)  # not 45 + 30 kW until noon
    assert {line.site_id: line.total_kg for line in park.lines} == pytest.approx(
        {"b3": B3_KG, "p2": 15 * 12 * 0.5}
    )
    assert city.total_kg == pytest.approx(B1_KG + B2_KG + park_kg)
