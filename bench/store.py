"""Store benchmark: the COPY writer against hand-written baselines, in the same run.

    .venv/bin/python bench/store.py [--rows 2000000] [--meters 1000] [--batch 50000]

Writes the same rows (1,000 meters at 1-min steps, time-ordered batches) into a freshly emptied
`readings` table four ways and prints rows/s and the ratio to the hand-written staged upsert:

- raw binary COPY straight into the keyed table (the ceiling: no idempotence),
- a hand-written staged upsert (psycopg `write_row` per row into a temp table, then
  `INSERT ... ON CONFLICT DO NOTHING`), what a careful user writes by hand,
- energyhub's ReadingWriter (numpy-encoded binary COPY into a staging table, the same upsert, plus
  `meter_latest` and rollup dirty marks),
- the writer again over the same rows (every row a duplicate: the idempotent replay case).

Not a test: it prints figures. Needs the PostgreSQL of ENERGYHUB_BENCH_PG_URL (default local).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable

import numpy as np
import psycopg
from psycopg import sql

from energyhub.store.batch import ReadingBatch
from energyhub.store.copy import encode
from energyhub.store.db import Backend, connect, open_pool
from energyhub.store.migrations import migrate
from energyhub.store.writer import ReadingWriter

ADMIN_URL = os.environ.get(
    "ENERGYHUB_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def batches(rows: int, meters: int, batch_rows: int) -> list[ReadingBatch]:
    steps = rows // meters
    start = np.datetime64("2026-11-01T00:00:00", "us")
    ts = np.repeat(start + np.arange(steps) * np.timedelta64(60, "s"), meters)
    ids = np.tile(np.arange(1, meters + 1, dtype=np.int32), steps)
    values = np.random.default_rng(1).normal(100.0, 10.0, steps * meters)
    whole = ReadingBatch(ts, ids, values)
    return [
        whole.take(np.arange(i, min(i + batch_rows, len(whole))))
        for i in range(0, len(whole), batch_rows)
    ]


async def raw_copy(url: str, data: list[ReadingBatch]) -> None:
    async with connect(url) as conn:
        for batch in data:
            async with conn.transaction():
                async with conn.cursor().copy(
                    "COPY readings (ts, meter_id, value) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    await copy.write(encode(batch))


async def hand_written_upsert(url: str, data: list[ReadingBatch]) -> None:
    async with connect(url) as conn:
        await conn.execute(
            "CREATE TEMP TABLE stage (ts timestamptz, meter_id integer, value double precision) "
            "ON COMMIT DELETE ROWS"
        )
        for batch in data:
            rows = zip(
                batch.ts.tolist(), batch.meter_id.tolist(), batch.value.tolist(), strict=True
            )
            async with conn.transaction():
                async with conn.cursor().copy("COPY stage FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["timestamp", "int4", "float8"])
                    for row in rows:
                        await copy.write_row(row)
                await conn.execute(
                    "INSERT INTO readings SELECT ts AT TIME ZONE 'UTC', meter_id, value FROM stage "
                    "ON CONFLICT DO NOTHING"
                )


async def energyhub_writer(url: str, data: list[ReadingBatch]) -> None:
    async with open_pool(url, max_size=1) as pool:
        writer = ReadingWriter(pool, Backend.POSTGRES)
        for batch in data:
            await writer.write(batch)


async def empty(url: str) -> None:
    async with connect(url) as conn:
        await conn.execute("TRUNCATE readings, meter_latest, rollup_dirty")
        await conn.execute("VACUUM ANALYZE readings")


async def timed(
    run: Callable[[str, list[ReadingBatch]], Awaitable[None]], url: str, data: list[ReadingBatch]
) -> float:
    started = time.perf_counter()
    await run(url, data)
    return time.perf_counter() - started


async def main(rows: int, meters: int, batch_rows: int) -> None:
    name = f"energyhub_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        async with connect(url) as conn:
            await migrate(conn)
        data = batches(rows, meters, batch_rows)
        total = sum(len(b) for b in data)
        results: dict[str, float] = {}
        for label, run, fresh in [
            ("raw binary COPY into readings (ceiling)", raw_copy, True),
            ("hand-written staged upsert (baseline)", hand_written_upsert, True),
            ("energyhub ReadingWriter", energyhub_writer, True),
            ("energyhub ReadingWriter, all duplicates", energyhub_writer, False),
        ]:
            if fresh:
                await empty(url)
            results[label] = total / await timed(run, url, data)
        baseline = results["hand-written staged upsert (baseline)"]
        print(
            f"{total:,} rows from {meters:,} meters in batches of {batch_rows:,}, PostgreSQL at {ADMIN_URL.rsplit('@', 1)[-1]}"
        )
        for label, rate in results.items():
            print(f"  {label:<45} {rate:>12,.0f} rows/s   {rate / baseline:5.2f}× baseline")
        writer = results["energyhub ReadingWriter"]
        ceiling = results["raw binary COPY into readings (ceiling)"]
        print(f"  writer / hand-written upsert: {writer / baseline:.2f}× (target ≥ 0.8×)")
        print(f"  writer / raw COPY ceiling:    {writer / ceiling:.2f}×")
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--meters", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=50_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rows, arguments.meters, arguments.batch))
