"""Carbon report of a year: how long one park's and its buildings' year reports take.

    flock /tmp/energyhub-bench.lock .venv/bin/python bench/carbon_year.py [--buildings 20]
        [--db NAME] [--keep] [--repeat 3]

Loads a park with `buildings` buildings (one 15-min power meter each; every fifth exports at
midday behind its meter), park PV and a battery, for the local year 2026 in Asia/Shanghai, into
a plain-PostgreSQL database (`--db` names it: reused if it exists, made and loaded if not), then times
`carbon_report` of the park and of one building for the year. Prints the median seconds of
`repeat` runs. Not a test: it prints figures. Needs the PostgreSQL of ENERGYHUB_BENCH_PG_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from psycopg import sql

from energyhub.carbon.accounting import carbon_report
from energyhub.sites import parse_site
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import connect, installed_backend, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter

ADMIN_URL = os.environ.get(
    "ENERGYHUB_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
ZONE = ZoneInfo("Asia/Shanghai")
YEAR = (datetime(2026, 1, 1, tzinfo=ZONE), datetime(2027, 1, 1, tzinfo=ZONE))
STEP = timedelta(minutes=15)


def _power(meter: str) -> dict[str, Any]:
    return {"id": meter, "carrier": "electricity", "quantity": "power_kw", "interval_s": 900}


def site(buildings: int) -> dict[str, Any]:
    return {
        "version": 1,
        "timezone": "Asia/Shanghai",
        "city": {
            "id": "benchcity",
            "carbon": {"grid_kg_per_kwh": 0.55},
            "parks": [
                {
                    "id": "bp",
                    "grid": {
                        "import_max_kw": 50000,
                        "tariff": "flat",
                        "export_price_cny_per_kwh": 0.3,
                    },
                    "meters": [
                        {**_power("pv"), "carrier": "pv", "asset": "bp-pv"},
                        {**_power("bat"), "asset": "bp-bat"},
                    ],
                    "assets": [
                        {"id": "bp-pv", "type": "pv", "peak_kw": 4000},
                        {
                            "id": "bp-bat",
                            "type": "battery",
                            "energy_kwh": 400,
                            "power_kw": 200,
                            "eta_charge": 0.95,
                            "eta_discharge": 0.95,
                            "soc_min": 0.1,
                            "soc_max": 0.9,
                            "soc_initial": 0.5,
                            "soc_final": 0.5,
                        },
                    ],
                    "buildings": [
                        {
                            "id": f"b{i:03d}",
                            "class": "office-A",
                            "floor_area_m2": 1000,
                            "meters": [_power("main")],
                        }
                        for i in range(buildings)
                    ],
                }
            ],
        },
    }


def readings(ids: dict[str, int], buildings: int) -> ReadingBatch:
    local = np.arange(
        np.datetime64("2025-12-31T16:15"),
        np.datetime64("2026-12-31T16:15"),
        np.timedelta64(15, "m"),
    )  # UTC bucket ends of local 2026
    hour = ((local.astype("datetime64[m]").astype(np.int64) // 60) + 8) % 24
    day = local.astype("datetime64[D]").astype(np.int64)
    midday = (hour >= 10) & (hour < 14)
    parts = [
        ReadingBatch.from_columns(local, [ids["bp/pv"]] * len(local), np.where(midday, 3000.0 + 500 * (day % 3), 0.0)),
        ReadingBatch.from_columns(local, [ids["bp/bat"]] * len(local), np.where(hour < 6, 50.0, np.where(hour >= 18, -50.0, 0.0))),
    ]  # fmt: skip
    for i in range(buildings):
        kw = 80.0 + 10.0 * (i % 7) + np.where((hour >= 8) & (hour < 20), 40.0, 0.0)
        if i % 5 == 0:
            kw = np.where(
                midday & (local.astype("datetime64[m]").astype(np.int64) // 15 % 4 != 0), -60.0, kw
            )
        parts.append(ReadingBatch.from_columns(local, [ids[f"b{i:03d}/main"]] * len(local), kw))
    return ReadingBatch.concat(parts)


async def load(url: str, buildings: int) -> None:
    async with connect(url) as conn:
        await migrate(conn)
        await sync_site(conn, parse_site(site(buildings)))
        cur = await conn.execute("SELECT site_id || '/' || name, id FROM meters")
        ids = {str(k): int(v) for k, v in await cur.fetchall()}
        backend = await installed_backend(conn)
    async with open_pool(url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(readings(ids, buildings))
    async with connect(url) as conn:
        await refresh_rollups(conn, backend)


async def time_report(url: str, site_id: str, repeat: int) -> tuple[float, float, float]:
    """Median seconds of `repeat` year reports of `site_id`, and the report's Scope 2 and export."""
    seconds = []
    async with connect(url) as conn:
        backend = await installed_backend(conn)
        for _ in range(repeat):
            began = time.perf_counter()
            report = await carbon_report(conn, backend, site_id, *YEAR)
            seconds.append(time.perf_counter() - began)
    return statistics.median(seconds), report.scope2_kg, report.exported_kwh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buildings", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", help="reuse this database (left by --keep)")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    args = parser.parse_args()
    name = args.db or f"eh_bench_carbon_{uuid.uuid4().hex[:8]}"
    url = f"{ADMIN_URL.rpartition('/')[0]}/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    if not exists:
        began = time.perf_counter()
        asyncio.run(load(url, args.buildings))
        print(f"loaded {name} in {time.perf_counter() - began:.1f} s")
    try:
        for site_id in ("bp", "b000"):
            seconds, scope2, exported = asyncio.run(time_report(url, site_id, args.repeat))
            print(
                f"{site_id} year report: {seconds:.2f} s median of {args.repeat} "
                f"(scope2 {scope2:,.1f} kg, exported {exported:,.1f} kWh)"
            )
    finally:
        if not args.keep:
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


if __name__ == "__main__":
    main()
