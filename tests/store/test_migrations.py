import asyncio

import pytest

from energyhub.errors import MigrationError
from energyhub.store.db import Backend, connect, installed_backend
from energyhub.store.migrations import LATEST_VERSION, current_version, migrate, require_schema


async def test_migrates_and_reruns_idempotently(store_url: str) -> None:
    async with connect(store_url) as conn:
        assert await current_version(conn) == 0
        with pytest.raises(MigrationError, match="run `energyhub db migrate`"):
            await require_schema(conn)
        first = await migrate(conn)
        assert first.previous_version == 0
        assert first.current_version == LATEST_VERSION
        assert len(first.applied) == LATEST_VERSION
        again = await migrate(conn)
        assert again.applied == []
        assert again.backend == first.backend
        await require_schema(conn)
        rows = await (await conn.execute("SELECT version, backend FROM schema_version")).fetchall()
        assert rows == [(v, first.backend.value) for v in range(1, LATEST_VERSION + 1)]


async def test_plain_postgres_layout(pg_url: str) -> None:
    async with connect(pg_url) as conn:
        report = await migrate(conn, partitions_ahead_days=3)
        assert report.backend is Backend.POSTGRES
        cur = await conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'readings'::regclass ORDER BY 1"
        )
        partitions = [r[0] for r in await cur.fetchall()]
        assert "readings_default" in partitions
        assert len([p for p in partitions if p.startswith("readings_p")]) == 5  # yesterday .. +3
        for table in ("readings_15m", "readings_1h", "rollup_dirty", "meter_latest", "rejected"):
            cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
            assert (await cur.fetchone())[0], table


async def test_off_keeps_plain_postgres_even_with_timescaledb(tsdb_url: str) -> None:
    async with connect(tsdb_url) as conn:
        report = await migrate(conn, timescaledb="off")
        assert report.backend is Backend.POSTGRES
        cur = await conn.execute("SELECT relkind FROM pg_class WHERE relname = 'readings'")
        assert (await cur.fetchone())[0] == "p"


async def test_require_fails_without_timescaledb(pg_url: str) -> None:
    async with connect(pg_url) as conn:
        with pytest.raises(MigrationError, match="ENERGYHUB_TIMESCALEDB=require"):
            await migrate(conn, timescaledb="require")
        assert await current_version(conn) == 0


async def test_require_refuses_a_schema_installed_on_plain_postgres(tsdb_url: str) -> None:
    """`db migrate` said "(postgres)" and succeeded: the setting was silently ignored."""
    async with connect(tsdb_url) as conn:
        await migrate(conn, timescaledb="off")
        # an admin creates the extension later: the schema's tables stay plain all the same (its
        # backend was read from the extension's presence, and the later migrations took the
        # TimescaleDB path on plain tables)
        await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        assert await installed_backend(conn) is Backend.POSTGRES
        with pytest.raises(MigrationError, match="installed on plain PostgreSQL"):
            await migrate(conn, timescaledb="require")
        assert (await migrate(conn, timescaledb="auto")).backend is Backend.POSTGRES


async def test_timescaledb_layout(tsdb_url: str) -> None:
    async with connect(tsdb_url) as conn:
        report = await migrate(conn, retention_days=400, compress_after_days=5)
        assert report.backend is Backend.TIMESCALEDB
        cur = await conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables ORDER BY 1"
        )
        assert ("readings",) in await cur.fetchall()
        cur = await conn.execute(
            "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates "
            "ORDER BY 1"
        )
        assert await cur.fetchall() == []  # since v011 the rollups are tables on both paths
        cur = await conn.execute(
            "SELECT relname, relkind FROM pg_class WHERE relname IN ('readings_15m', 'readings_1h') "
            "ORDER BY 1"
        )
        assert await cur.fetchall() == [("readings_15m", "r"), ("readings_1h", "r")]
        cur = await conn.execute(
            "SELECT proc_name, hypertable_name, config->>'drop_after', config->>'compress_after' "
            "FROM timescaledb_information.jobs WHERE proc_name IN "
            "('policy_retention', 'policy_compression') ORDER BY 1"
        )
        jobs = await cur.fetchall()
        assert ("policy_compression", "readings", None, "5 days") in jobs
        assert ("policy_retention", "readings", "400 days", None) in jobs
        cur = await conn.execute(
            "SELECT segmentby_column_index IS NOT NULL FROM timescaledb_information.compression_settings "
            "WHERE hypertable_name = 'readings' AND attname = 'meter_id'"
        )
        assert (await cur.fetchone())[0]


async def test_two_processes_migrating_at_once(pg_url: str) -> None:
    async def run() -> int:
        async with connect(pg_url) as conn:
            return len((await migrate(conn)).applied)

    results = await asyncio.gather(run(), run(), run())
    assert sorted(results) == [0, 0, LATEST_VERSION]


async def test_newer_schema_is_refused(pg_url: str) -> None:
    async with connect(pg_url) as conn:
        await migrate(conn)
        await conn.execute(
            "INSERT INTO schema_version (version, description, backend) VALUES (999, 'x', 'postgres')"
        )
        with pytest.raises(MigrationError, match="version 999, newer than this energyhub"):
            await migrate(conn)
