"""A small city with hand-checkable readings, loaded once per test module into a real PostgreSQL.

Two local days, 2026-10-04 (D-1) and 2026-10-05 (D), a reading every 15 minutes:

- b1/main   power 100 kW, on D a gap 10:00-12:00                  → D 2200 kWh, D-1 2400 kWh
- b1/heat   counter +10 kWh/15 min, rolls over at 10 000 (D 00:45), resets to 0 (D 13:30)
            → D 950 kWh (the reset interval counts from zero), D-1 960 kWh
- b1/gas    counter +5 kWh/15 min, on D a gap 16:00-18:00 (the counter carries it) → 480 kWh a day
- b1/t1     tenant-a's electricity sub-meter, counter +5 kWh/15 min    → 480 kWh a day
- b1/t2     tenant-b's electricity sub-meter, power 10 kW              → 240 kWh a day
- b1/pv     PV power 40 kW from 08:00 to 16:00                         → 320 kWh a day
- b2/main   power 50 kW                                                → 1200 kWh a day
- b3/main   power 30 kW (park p2)                                      → 720 kWh a day
- b4        only a temperature sensor (no energy meters)

Counters start one reading before D-1 so that D-1's first interval is known.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest
from psycopg import sql

from energyhub.sites import SiteFile, parse_site
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import connect, installed_backend, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter

ADMIN_URL = os.environ.get("ENERGYHUB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ZONE = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 10, 5, tzinfo=ZONE)
BEFORE = DAY - timedelta(days=1)
STEP = timedelta(minutes=15)

SITE: dict[str, Any] = {
    "version": 1,
    "timezone": "Asia/Shanghai",
    "city": {
        "id": "testcity",
        "carbon": {
            "grid_kg_per_kwh": 0.7,
            "gas_kg_per_kwh": 0.2,
            "heat_kg_per_kwh": 0.4,
            "price_cny_per_t": 100,
            "factors_by_year": {2025: {"grid_kg_per_kwh": 0.5}, 2020: {"grid_kg_per_kwh": 0.9}},
        },
        "parks": [
            {
                "id": "p1",
                "grid": {"import_max_kw": 5000, "tariff": "flat"},
                "gas": {"price_cny_per_nm3": 4.0, "lhv_kwh_per_nm3": 10.0},
                "buildings": [
                    {
                        "id": "b1",
                        "class": "office-A",
                        "floor_area_m2": 10000,
                        "carbon_target_kg_per_year": 500000,
                        "meters": [
                            {"id": "main", "carrier": "electricity", "quantity": "power_kw"},
                            {
                                "id": "heat",
                                "carrier": "heat",
                                "quantity": "energy_kwh",
                                "rollover_kwh": 10000,
                            },
                            {"id": "gas", "carrier": "gas", "quantity": "energy_kwh"},
                            {
                                "id": "t1",
                                "carrier": "electricity",
                                "quantity": "energy_kwh",
                                "submeter_of": "main",
                            },
                            {
                                "id": "t2",
                                "carrier": "electricity",
                                "quantity": "power_kw",
                                "submeter_of": "main",
                            },
                            {"id": "pv", "carrier": "pv", "quantity": "power_kw", "asset": "b1-pv"},
                        ],
                        "enterprises": [
                            {
                                "id": "tenant-a",
                                "floor_area_m2": 2000,
                                "meters": ["t1"],
                                "carbon_target_kg_per_year": 20000,
                            },
                            {"id": "tenant-b", "floor_area_m2": 3000, "meters": ["t2"]},
                        ],
                        "assets": [{"id": "b1-pv", "type": "pv", "peak_kw": 100}],
                    },
                    {
                        "id": "b2",
                        "class": "lab",
                        "floor_area_m2": 5000,
                        "meters": [
                            {"id": "main", "carrier": "electricity", "quantity": "power_kw"}
                        ],
                    },
                    {
                        "id": "b4",
                        "class": "retail",
                        "floor_area_m2": 1000,
                        "meters": [{"id": "t", "carrier": "none", "quantity": "temperature_c"}],
                    },
                ],
            },
            {
                "id": "p2",
                "grid": {"import_max_kw": 5000, "tariff": "flat"},
                "buildings": [
                    {
                        "id": "b3",
                        "class": "hotel",
                        "floor_area_m2": 8000,
                        "meters": [
                            {"id": "main", "carrier": "electricity", "quantity": "power_kw"}
                        ],
                    }
                ],
            },
        ],
    },
}


def readings() -> dict[str, tuple[list[datetime], list[float]]]:
    """Every meter's (timestamps, values), as the module docstring describes."""
    power_ts = [BEFORE + i * STEP for i in range(192)]
    counter_ts = [BEFORE + i * STEP for i in range(-1, 192)]

    def local_hour(ts: datetime) -> int:
        return ts.astimezone(ZONE).hour

    def heat(i: int) -> float:
        return 10.0 * (i - 150) if i >= 150 else (9000.0 + 10 * (i + 1)) % 10000

    in_main_gap = [DAY + timedelta(hours=10) <= t < DAY + timedelta(hours=12) for t in power_ts]
    gas = [(t, 500.0 + 5 * (i + 1)) for i, t in zip(range(-1, 192), counter_ts, strict=True)]
    return {
        "b1/main": (
            [t for t, gap in zip(power_ts, in_main_gap, strict=True) if not gap],
            [100.0] * (192 - sum(in_main_gap)),
        ),
        "b1/heat": (counter_ts, [heat(i) for i in range(-1, 192)]),
        "b1/gas": (
            [t for t, _ in gas if not DAY + timedelta(hours=16) <= t < DAY + timedelta(hours=18)],
            [v for t, v in gas if not DAY + timedelta(hours=16) <= t < DAY + timedelta(hours=18)],
        ),
        "b1/t1": (counter_ts, [5.0 * (i + 1) for i in range(-1, 192)]),
        "b1/t2": (power_ts, [10.0] * 192),
        "b1/pv": (power_ts, [40.0 if 8 <= local_hour(t) < 16 else 0.0 for t in power_ts]),
        "b2/main": (power_ts, [50.0] * 192),
        "b3/main": (power_ts, [30.0] * 192),
    }


def batch(ids: dict[str, int]) -> ReadingBatch:
    parts = []
    for name, (ts, values) in readings().items():
        utc = np.array([t.astimezone(ZoneInfo("UTC")).replace(tzinfo=None) for t in ts])
        parts.append(
            ReadingBatch.from_columns(utc.astype("datetime64[us]"), [ids[name]] * len(ts), values)
        )
    return ReadingBatch.concat(parts)


async def load(url: str, site: SiteFile) -> None:
    async with connect(url) as conn:
        await migrate(conn)
        await sync_site(conn, site)
        cur = await conn.execute("SELECT site_id || '/' || name, id FROM meters")
        ids = {str(k): int(v) for k, v in await cur.fetchall()}
        backend = await installed_backend(conn)
    async with open_pool(url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(batch(ids))
    async with connect(url) as conn:
        await refresh_rollups(conn, backend)


@pytest.fixture(scope="module")
def site() -> SiteFile:
    return parse_site(SITE)


@pytest.fixture(scope="module")
def carbon_url(site: SiteFile) -> Iterator[str]:
    """A database of its own with the test city and its two days of readings."""
    name = f"eh_carbon_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{ADMIN_URL.rpartition('/')[0]}/{name}"
    try:
        asyncio.run(load(url, site))
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
