from datetime import date

import numpy as np
from psycopg_pool import AsyncConnectionPool

from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, connect, open_pool
from energyhub.store.maintenance import drop_expired_partitions, maintain
from energyhub.store.migrations import migrate
from energyhub.store.writer import ReadingWriter


async def partitions(pool: AsyncConnectionPool) -> list[str]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'readings'::regclass AND c.relname LIKE 'readings_p%' ORDER BY 1"
        )
        return [r[0] for r in await cur.fetchall()]


async def test_retention_drops_whole_old_days_only(pg_url: str) -> None:
    async with connect(pg_url) as conn:
        await migrate(conn)
    async with open_pool(pg_url, max_size=1) as pool:
        writer = ReadingWriter(pool, Backend.POSTGRES)
        days = np.array(
            ["2026-01-01T12:00", "2026-01-02T12:00", "2026-01-03T12:00"], "datetime64[us]"
        )
        await writer.write(ReadingBatch.from_columns(days, [1, 1, 1], [1.0, 2.0, 3.0]))
        assert {"readings_p20260101", "readings_p20260102", "readings_p20260103"} <= set(
            await partitions(pool)
        )
        async with pool.connection() as conn:
            dropped = await drop_expired_partitions(conn, retention_days=30, today=date(2026, 2, 2))
            assert dropped == ["readings_p20260101", "readings_p20260102"]
            cur = await conn.execute("SELECT value FROM readings WHERE meter_id = 1")
            assert await cur.fetchall() == [(3.0,)]


async def test_maintain_refreshes_dirty_rollups(pg_url: str) -> None:
    async with connect(pg_url) as conn:
        await migrate(conn)
    async with open_pool(pg_url, max_size=1) as pool:
        writer = ReadingWriter(pool, Backend.POSTGRES)
        ts = np.datetime64("2026-11-20T00:00", "us") + np.arange(30) * np.timedelta64(1, "m")
        await writer.write(ReadingBatch.from_columns(ts, np.full(30, 5), np.arange(30.0)))
        async with pool.connection() as conn:
            report = await maintain(
                conn, Backend.POSTGRES, retention_days=3650, partitions_ahead_days=2
            )
            assert report.rollup_buckets_refreshed == 2
            cur = await conn.execute(
                "SELECT bucket, n, sum_value, first_value, last_value FROM readings_15m ORDER BY 1"
            )
            rows = await cur.fetchall()
            assert [(r[1], r[2], r[3], r[4]) for r in rows] == [
                (15, 105.0, 0.0, 14.0),
                (15, 330.0, 15.0, 29.0),
            ]
            cur = await conn.execute("SELECT n, sum_value FROM readings_1h")
            assert await cur.fetchall() == [(30, 435.0)]
            again = await maintain(
                conn, Backend.POSTGRES, retention_days=3650, partitions_ahead_days=2
            )
            assert again.rollup_buckets_refreshed == 0
