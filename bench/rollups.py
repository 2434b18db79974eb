"""Rollup refresh benchmark: schema 11's refresh against schema 10's, same data, same run.

    flock /tmp/energyhub-bench.lock .venv/bin/python bench/rollups.py [--meters 200] [--days 1]

Loads `meters` meters (half power meters, half counters, all load meters of one building) at
1-min steps for `days` days into a fresh plain-PostgreSQL database. Then it times recomputing
the 15-min, hourly and per-site load rollups of every day, alternating two functions:

- schema 10's `energyhub_refresh_rollups`, kept under another name (bucket-end values only),
- schema 11's, which also sums each reading's step (`energyhub_step_kwh`).

It prints the median seconds per day for each and their ratio. Not a test: it prints figures.
Needs the PostgreSQL of ENERGYHUB_BENCH_PG_URL (default local).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
from psycopg import sql

from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, connect, open_pool
from energyhub.store.migrations import migrate
from energyhub.store.migrations.v007_site_load import REFRESH_ROLLUPS, REFRESH_SITE_LOAD
from energyhub.store.siteload import sync_members
from energyhub.store.writer import ReadingWriter

ADMIN_URL = os.environ.get(
    "ENERGYHUB_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
START = datetime(2026, 11, 1, tzinfo=UTC)

OLD_FUNCTIONS = [
    REFRESH_SITE_LOAD.replace("energyhub_refresh_site_load(", "bench_refresh_site_load_v10(")
    .replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"),
    REFRESH_ROLLUPS.replace("energyhub_refresh_rollups(", "bench_refresh_rollups_v10(").replace(
        "PERFORM energyhub_refresh_site_load(lo, hi)", "PERFORM bench_refresh_site_load_v10(lo, hi)"
    ),
]  # fmt: skip
"""Schema 10's refresh functions under other names, writing into schema 11's tables."""


async def load(url: str, meters: int, days: int) -> None:
    async with connect(url) as conn:
        await migrate(conn, partitions_ahead_days=0)
        for statement in OLD_FUNCTIONS:
            await conn.execute(statement)
        await conn.execute("INSERT INTO sites (id, kind) VALUES ('b', 'building')")
        for i in range(meters):
            quantity = "power_kw" if i % 2 == 0 else "energy_kwh"
            await conn.execute(
                "INSERT INTO meters (site_id, name, carrier, quantity) "
                "VALUES ('b', %s, 'electricity', %s)",
                (f"m{i}", quantity),
            )
        await sync_members(conn)
        cur = await conn.execute("SELECT id, quantity FROM meters ORDER BY id")
        kinds = await cur.fetchall()
    steps = days * 1440
    stamps = np.datetime64(START.replace(tzinfo=None), "us") + np.arange(steps) * np.timedelta64(
        60, "s"
    )
    rng = np.random.default_rng(1)
    async with open_pool(url, max_size=1) as pool:
        writer = ReadingWriter(pool, Backend.POSTGRES)
        for meter_id, quantity in kinds:
            values = rng.uniform(0, 100, steps)
            if quantity == "energy_kwh":
                values = np.cumsum(values / 60)
            await writer.write(ReadingBatch.from_columns(stamps, np.full(steps, meter_id), values))


async def run(url: str, days: int, rounds: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"schema 10": [], "schema 11": []}
    functions = {"schema 10": "bench_refresh_rollups_v10", "schema 11": "energyhub_refresh_rollups"}
    async with connect(url) as conn:
        await conn.execute("DELETE FROM rollup_dirty")
        for _ in range(rounds):
            for name, function in functions.items():
                for day in range(days):
                    lo = START + timedelta(days=day)
                    started = time.perf_counter()
                    await conn.execute(
                        sql.SQL("SELECT {}(%s, %s)").format(sql.Identifier(function)),
                        (lo, lo + timedelta(days=1)),
                    )
                    timings[name].append(time.perf_counter() - started)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=200)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    name = f"eh_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{ADMIN_URL.rpartition('/')[0]}/{name}"
    try:
        asyncio.run(load(url, args.meters, args.days))
        timings = asyncio.run(run(url, args.days, args.rounds))
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    old, new = (statistics.median(timings[k]) for k in ("schema 10", "schema 11"))
    rows = args.meters * 1440
    print(f"{args.meters} meters × 1440 readings a day, {args.rounds} rounds, median per day:")
    print(f"  schema 10 refresh: {old:.3f} s ({rows / old:,.0f} readings/s)")
    print(f"  schema 11 refresh: {new:.3f} s ({rows / new:,.0f} readings/s)")
    print(f"  ratio schema 11 / schema 10: {new / old:.2f}")


if __name__ == "__main__":
    main()
