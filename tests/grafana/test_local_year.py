"""The carbon panels take a bucket's factor year on the park's local clock (`ZONE`), as the other
panels group its hours and days: a reading just after New Year in India (+05:30) is priced at the
new year's factor, even where the database still holds the city of a site file loaded before
(inactive, in another zone), which the panels' year used to follow."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest

from energyhub.grafana import carbon, carbon_market
from energyhub.sites import parse_site
from energyhub.store.db import connect
from energyhub.store.sync import sync_site
from tests.grafana.macros import Chosen, TimeRange, expand
from tests.grafana.test_values import _moment
from tests.scheduler.conftest import prepare_db, site_doc, write_readings

START = pd.Timestamp("2025-12-31 23:00", tz="Asia/Kolkata")  # 17:30 UTC
HOURS = 2
LOAD_KW = 100.0
FACTORS = {2025: {"grid_kg_per_kwh": 0.5}, 2026: {"grid_kg_per_kwh": 0.8}}
CHOSEN = {"park": Chosen(("sp",), False), "building": Chosen(("office",), True)}


def _doc(city_id: str, zone: str) -> dict[str, Any]:
    doc = site_doc()
    doc["timezone"] = zone
    doc["city"]["id"] = city_id
    doc["city"]["carbon"] = {"grid_kg_per_kwh": 0.5306, "factors_by_year": FACTORS}
    main = doc["city"]["parks"][0]["buildings"][0]["meters"][0]
    main["interval_s"] = 900  # a reading a quarter hour stands for its quarter hour
    return doc


@pytest.fixture
def kolkata_db(pg_url: str) -> str:
    """The park in India, loaded after the same park's file under another city in Denver (-07:00,
    still New Year's Eve there at 00:00 in India), whose city row stays behind, inactive."""

    async def build() -> None:
        await prepare_db(pg_url, parse_site(_doc("denver", "America/Denver"), "old-site"))
        async with connect(pg_url) as conn:
            await sync_site(conn, parse_site(_doc("tcity", "Asia/Kolkata"), "test-site"))
        index = pd.date_range(START, periods=HOURS * 4, freq="15min").tz_convert("UTC")
        await write_readings(pg_url, {"main": pd.Series(np.full(len(index), LOAD_KW), index)})

    asyncio.run(build())
    with psycopg.connect(pg_url) as conn:
        zones = conn.execute(
            "SELECT id, active, attributes->>'timezone' FROM sites WHERE kind = 'city' ORDER BY id"
        ).fetchall()
    assert zones == [("denver", False, "America/Denver"), ("tcity", True, "Asia/Kolkata")]
    return pg_url


def _panel(url: str, text: str, interval: str) -> list[tuple]:
    end = START + pd.Timedelta(hours=HOURS)
    rng = TimeRange(START.to_pydatetime(), end.to_pydatetime())
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(expand(text, CHOSEN, rng, interval, False).encode()).fetchall()


def test_new_year_in_india_takes_the_new_years_factor(kolkata_db: str) -> None:
    """23:00-00:00 on 31 December is 2025's, 00:00-01:00 on 1 January 2026's: the panel counted
    both in Denver's 2025 (0.5 kg/kWh for the second hour as well)."""
    rows = _panel(kolkata_db, carbon.BY_CARRIER, "1h")
    local = [_moment(row[0]).tz_convert("Asia/Kolkata").strftime("%Y-%m-%d %H:%M") for row in rows]
    assert local == ["2025-12-31 23:00", "2026-01-01 00:00"]
    assert [row[1] for row in rows] == pytest.approx([LOAD_KW * 0.5, LOAD_KW * 0.8])


def test_the_total_in_range_sums_each_years_factor(kolkata_db: str) -> None:
    ((co2_t, scope1_t, scope2_t),) = _panel(kolkata_db, carbon.TOTAL, "15m")
    assert scope1_t == pytest.approx(0)
    assert co2_t == scope2_t == pytest.approx(LOAD_KW * (0.5 + 0.8) / 1000)


def test_the_residual_mix_is_the_park_citys(kolkata_db: str) -> None:
    """Market-based Scope 2 falls back on the city's residual mix: the park's city's, not
    whichever city row came first (the one left behind, here 0.9 kg/kWh)."""
    with psycopg.connect(kolkata_db) as conn:
        for city_id, residual in (("denver", 0.9), ("tcity", 0.6)):
            conn.execute(
                "UPDATE sites SET attributes = jsonb_set(attributes, '{carbon}', attributes->"
                "'carbon' || jsonb_build_object('residual_mix_kg_per_kwh', %s::float8)) "
                "WHERE id = %s",
                (residual, city_id),
            )
    (row,) = _panel(kolkata_db, carbon_market.SCOPE2_DUAL, "15m")
    assert row[5] == pytest.approx(0.6)
    assert row[1] == pytest.approx(LOAD_KW * 2 * 0.6)
