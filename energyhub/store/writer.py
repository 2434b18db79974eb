"""The COPY writer: binary COPY into a staging table, then one INSERT ... ON CONFLICT DO NOTHING.

A repeated reading is idempotent by the (meter_id, ts) key; the result says how many rows were new.
No per-row SQL: a batch is one COPY stream and three set-based statements in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from energyhub.errors import DatabaseUnavailableError
from energyhub.store.batch import ReadingBatch
from energyhub.store.copy import encode
from energyhub.store.db import Backend

CREATE_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS readings_stage "
    "(ts timestamptz, meter_id integer, value double precision) ON COMMIT DELETE ROWS"
)
COPY_STAGE = "COPY readings_stage (ts, meter_id, value) FROM STDIN (FORMAT BINARY)"
INSERT_NEW = (
    "INSERT INTO readings (ts, meter_id, value) SELECT ts, meter_id, value FROM readings_stage "
    "ON CONFLICT DO NOTHING"
)
UPSERT_LATEST = """
    INSERT INTO meter_latest (meter_id, ts, value)
    SELECT DISTINCT ON (meter_id) meter_id, ts, value FROM readings_stage
    ORDER BY meter_id, ts DESC
    ON CONFLICT (meter_id) DO UPDATE SET ts = excluded.ts, value = excluded.value
    WHERE excluded.ts > meter_latest.ts"""
MARK_DIRTY = """
    INSERT INTO rollup_dirty (bucket)
    SELECT DISTINCT date_bin('15 minutes', ts, '2000-01-01 00:00:00+00') FROM readings_stage
    ON CONFLICT DO NOTHING"""
COPY_REJECTED = "COPY rejected (received_at, topic, payload, reason) FROM STDIN"
ENSURE_PARTITIONS = "SELECT energyhub_ensure_partition(d) FROM unnest(%s::date[]) AS d"


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A message or reading refused by the ingest, with the reason, for the `rejected` table."""

    received_at: datetime
    topic: str
    payload: str
    reason: str


@dataclass(frozen=True, slots=True)
class WriteResult:
    received: int
    new: int

    @property
    def duplicates(self) -> int:
        return self.received - self.new


class ReadingWriter:
    """Stores ReadingBatches; on plain PostgreSQL also makes partitions and marks rollups dirty."""

    def __init__(self, pool: AsyncConnectionPool, backend: Backend) -> None:
        self._pool = pool
        self._backend = backend
        self._known_days: set[np.datetime64] = set()

    async def write(self, batch: ReadingBatch, rejected: Sequence[RejectedRow] = ()) -> WriteResult:
        """Store readings and rejects in one transaction; DatabaseUnavailableError if it cannot."""
        if not len(batch) and not rejected:
            return WriteResult(0, 0)
        try:
            if self._backend is Backend.POSTGRES and len(batch):
                await self._ensure_partitions(batch)
            async with self._pool.connection() as conn, conn.transaction():
                new = await self._insert(conn, batch) if len(batch) else 0
                if rejected:
                    async with conn.cursor().copy(COPY_REJECTED) as copy:
                        for row in rejected:
                            await copy.write_row(
                                (row.received_at, row.topic, row.payload, row.reason)
                            )
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise DatabaseUnavailableError(f"writing {len(batch)} readings failed: {exc}") from exc
        return WriteResult(len(batch), new)

    async def _insert(self, conn: AsyncConnection, batch: ReadingBatch) -> int:
        await conn.execute(CREATE_STAGE)
        async with conn.cursor().copy(COPY_STAGE) as copy:
            await copy.write(encode(batch))
        cursor = await conn.execute(INSERT_NEW)
        await conn.execute(UPSERT_LATEST)
        if self._backend is Backend.POSTGRES:
            await conn.execute(MARK_DIRTY)
        return cursor.rowcount

    async def _ensure_partitions(self, batch: ReadingBatch) -> None:
        days = np.unique(batch.ts.astype("datetime64[D]"))
        missing = [day for day in days if day not in self._known_days]
        if not missing:
            return
        async with self._pool.connection() as conn:
            await conn.execute(ENSURE_PARTITIONS, ([d.item() for d in missing],))
        self._known_days.update(missing)
