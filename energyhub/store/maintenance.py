"""Housekeeping that keeps the store current: rollups, partitions ahead, retention."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from psycopg import AsyncConnection, sql

from energyhub.store.db import Backend

PARTITION_PREFIX = "readings_p"


@dataclass
class MaintenanceReport:
    rollup_buckets_refreshed: int = 0
    partitions_created: int = 0
    partitions_dropped: list[str] = field(default_factory=list)


async def refresh_rollups(
    conn: AsyncConnection, backend: Backend, since: datetime | None = None
) -> int:
    """Bring the rollups up to date; returns the 15-min buckets refreshed as the writer marked them.

    Since schema version 11 both paths keep their rollups as tables refreshed from the buckets
    the writer marked dirty (`energyhub_refresh_dirty_rollups`); `since` and `backend` are kept
    for callers written for TimescaleDB's continuous aggregates and change nothing.
    """
    return await refresh_dirty_rollups(conn, backend)


async def refresh_dirty_rollups(conn: AsyncConnection, backend: Backend) -> int:
    """Refresh exactly the buckets the writer marked dirty — meter rollups and per-site load
    rollups, in one SQL function and transaction on both paths; returns the 15-min buckets
    refreshed."""
    cur = await conn.execute("SELECT energyhub_refresh_dirty_rollups()")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


BUCKET = timedelta(minutes=15)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def floor(ts: datetime, grain: timedelta) -> datetime:
    return ts - (ts - EPOCH) % grain


def ceil(ts: datetime, grain: timedelta) -> datetime:
    return floor(ts + grain - timedelta(microseconds=1), grain)


def bucket_runs(buckets: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Consecutive 15-min buckets as [lo, hi) ranges."""
    runs: list[tuple[datetime, datetime]] = []
    for bucket in buckets:
        if runs and runs[-1][1] == bucket:
            runs[-1] = (runs[-1][0], bucket + BUCKET)
        else:
            runs.append((bucket, bucket + BUCKET))
    return runs


async def ensure_partitions_ahead(conn: AsyncConnection, days_ahead: int) -> int:
    """Daily partitions from yesterday to `days_ahead` days on (plain PostgreSQL); count created."""
    cur = await conn.execute(
        "SELECT count(*) FILTER (WHERE energyhub_ensure_partition(d::date)) FROM generate_series("
        "(now() AT TIME ZONE 'UTC')::date - 1, (now() AT TIME ZONE 'UTC')::date + %s, "
        "interval '1 day') AS d",
        (days_ahead,),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def drop_expired_partitions(
    conn: AsyncConnection, retention_days: int, today: date | None = None
) -> list[str]:
    """Drop daily partitions whose whole day is older than the retention (plain PostgreSQL)."""
    cutoff = (today or datetime.now(UTC).date()) - timedelta(days=retention_days)
    cur = await conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'readings'::regclass AND c.relname LIKE %s ORDER BY 1",
        (PARTITION_PREFIX + "%",),
    )
    expired = [
        name
        for (name,) in await cur.fetchall()
        if datetime.strptime(name.removeprefix(PARTITION_PREFIX), "%Y%m%d").date() < cutoff
    ]
    for name in expired:
        await conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
    return expired


async def maintain(
    conn: AsyncConnection, backend: Backend, *, retention_days: int, partitions_ahead_days: int
) -> MaintenanceReport:
    """One housekeeping pass (TimescaleDB's own jobs do partitions and retention there)."""
    report = MaintenanceReport()
    report.rollup_buckets_refreshed = await refresh_rollups(conn, backend)
    if backend is Backend.POSTGRES:
        report.partitions_created = await ensure_partitions_ahead(conn, partitions_ahead_days)
        report.partitions_dropped = await drop_expired_partitions(conn, retention_days)
    return report
