import asyncio
from datetime import UTC, datetime

import numpy as np
import pytest
from psycopg_pool import AsyncConnectionPool

from energyhub.errors import DatabaseUnavailableError
from energyhub.store.batch import ReadingBatch
from energyhub.store.copy import encode
from energyhub.store.db import Backend, connect, installed_backend, open_pool
from energyhub.store.migrations import migrate
from energyhub.store.writer import ReadingWriter

T0 = np.datetime64("2026-11-20T00:00:00", "us")


def grid_batch(meters: int, steps: int, start: np.datetime64 = T0, seed: int = 0) -> ReadingBatch:
    ts = np.repeat(start + np.arange(steps) * np.timedelta64(60, "s"), meters)
    ids = np.tile(np.arange(1, meters + 1), steps)
    values = np.random.default_rng(seed).normal(100, 10, meters * steps)
    return ReadingBatch.from_columns(ts, ids, values)


async def rows(pool: AsyncConnectionPool, query: str) -> list[tuple]:
    async with pool.connection() as conn:
        return await (await conn.execute(query)).fetchall()


async def writer_for(pool: AsyncConnectionPool) -> ReadingWriter:
    async with pool.connection() as conn:
        return ReadingWriter(pool, await installed_backend(conn))


async def test_new_rows_counted_and_repeats_idempotent(pool: AsyncConnectionPool) -> None:
    writer = await writer_for(pool)
    batch = grid_batch(meters=50, steps=20)
    first = await writer.write(batch)
    assert (first.received, first.new) == (1000, 1000)
    again = await writer.write(batch)
    assert (again.received, again.new, again.duplicates) == (1000, 0, 1000)
    assert await rows(pool, "SELECT count(*) FROM readings") == [(1000,)]


async def test_values_and_timestamps_round_trip(pool: AsyncConnectionPool) -> None:
    writer = await writer_for(pool)
    ts = np.array(
        ["2026-11-20T08:15:30.123456", "1999-12-31T23:59:59", "2038-01-19T03:14:08"],
        "datetime64[us]",
    )
    batch = ReadingBatch.from_columns(ts, [7, 8, 9], [1.5, -0.0, 1e300])
    assert (await writer.write(batch)).new == 3
    stored = await rows(pool, "SELECT ts, meter_id, value FROM readings ORDER BY meter_id")
    assert stored == [
        (datetime(2026, 11, 20, 8, 15, 30, 123456, UTC), 7, 1.5),
        (datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), 8, -0.0),
        (datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC), 9, 1e300),
    ]


async def test_duplicates_inside_one_batch_and_partial_overlap(pool: AsyncConnectionPool) -> None:
    writer = await writer_for(pool)
    batch = grid_batch(meters=3, steps=4)
    doubled = ReadingBatch.concat([batch, batch.take(np.arange(5))])
    assert (await writer.write(doubled)).new == 12
    overlap = ReadingBatch.concat(
        [batch.take(np.arange(6)), grid_batch(3, 2, T0 + np.timedelta64(1, "h"))]
    )
    result = await writer.write(overlap)
    assert (result.received, result.new) == (12, 6)


async def test_latest_value_per_meter_only_moves_forward(pool: AsyncConnectionPool) -> None:
    writer = await writer_for(pool)
    await writer.write(grid_batch(meters=2, steps=10, seed=1))
    older = ReadingBatch.from_columns([T0 - np.timedelta64(1, "D")], [1], [-1.0])
    await writer.write(older)
    latest = await rows(pool, "SELECT meter_id, ts, value FROM meter_latest ORDER BY meter_id")
    raw = await rows(
        pool,
        "SELECT DISTINCT ON (meter_id) meter_id, ts, value FROM readings ORDER BY meter_id, ts DESC",
    )
    assert latest == raw
    assert latest[0][1] == datetime(2026, 11, 20, 0, 9, tzinfo=UTC)


async def test_empty_batch(pool: AsyncConnectionPool) -> None:
    writer = await writer_for(pool)
    result = await writer.write(ReadingBatch.empty())
    assert (result.received, result.new) == (0, 0)


def test_batch_columns_must_align() -> None:
    with pytest.raises(ValueError, match="columns differ in length: ts 2, meter_id 1, value 2"):
        ReadingBatch(np.array([T0, T0]), np.array([1], np.int32), np.array([1.0, 2.0]))


def test_binary_copy_framing() -> None:
    batch = ReadingBatch.from_columns([np.datetime64("2000-01-01T00:00:01", "us")], [258], [1.0])
    stream = encode(batch)
    assert stream.startswith(b"PGCOPY\n\xff\r\n\x00")
    row = stream[19:-2]
    assert row == (
        b"\x00\x03"
        + b"\x00\x00\x00\x08"
        + (1_000_000).to_bytes(8, "big")
        + b"\x00\x00\x00\x04"
        + (258).to_bytes(4, "big")
        + b"\x00\x00\x00\x08"
        + bytes.fromhex("3ff0000000000000")
    )
    assert stream.endswith(b"\xff\xff")


async def test_plain_postgres_makes_partitions_for_any_day(pg_url: str) -> None:
    async with connect(pg_url) as conn:
        await migrate(conn)
        await conn.execute(  # a row that landed in the default partition before its day had one
            "INSERT INTO readings VALUES ('2024-03-01 12:00+00', 1, 5.0)"
        )
    async with open_pool(pg_url, max_size=2) as pool:
        writer = ReadingWriter(pool, Backend.POSTGRES)
        far = np.datetime64("2024-03-01T00:00:00", "us")
        result = await writer.write(grid_batch(meters=2, steps=3, start=far))
        assert result.new == 6
        placed = await rows(
            pool, "SELECT tableoid::regclass::text, count(*) FROM readings GROUP BY 1 ORDER BY 1"
        )
        assert placed == [("readings_p20240301", 7)]
        dirty = await rows(pool, "SELECT count(*) FROM rollup_dirty")
        assert dirty == [(1,)]


async def test_unreachable_database_is_a_clear_error(pg_url: str) -> None:
    async with open_pool(pg_url, max_size=1, timeout_s=2) as pool:
        async with pool.connection() as conn:
            await migrate(conn)
        writer = ReadingWriter(pool, Backend.POSTGRES)
        async with connect(pg_url.rsplit("/", 1)[0] + "/postgres") as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (pg_url.rsplit("/", 1)[1],),
            )
            await admin.execute(
                f"ALTER DATABASE {pg_url.rsplit('/', 1)[1]} ALLOW_CONNECTIONS false"
            )
        with pytest.raises(DatabaseUnavailableError, match="writing 4 readings failed"):
            await writer.write(grid_batch(meters=2, steps=2))
        async with connect(pg_url.rsplit("/", 1)[0] + "/postgres") as admin:
            await admin.execute(f"ALTER DATABASE {pg_url.rsplit('/', 1)[1]} ALLOW_CONNECTIONS true")


async def test_writers_racing_for_a_new_day(pg_url: str) -> None:
    async with connect(pg_url) as conn:
        await migrate(conn)
    async with open_pool(pg_url, max_size=4) as pool:
        writers = [ReadingWriter(pool, Backend.POSTGRES) for _ in range(4)]
        day = np.datetime64("2025-06-01T00:00:00", "us")
        results = await asyncio.gather(
            *(w.write(grid_batch(5, 10, day, seed=i)) for i, w in enumerate(writers))
        )
        assert sum(r.new for r in results) == 50
        assert await rows(
            pool, "SELECT count(*) FROM pg_class WHERE relname = 'readings_p20250601'"
        ) == [(1,)]
