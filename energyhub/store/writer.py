"""The COPY writer: binary COPY, straight into `readings` or through a staging table.

A repeated reading is idempotent by the (meter_id, ts) key; the result says how many rows were new.
Most batches hold no reading stored before, so the writer first copies straight into `readings`
(the fast path, ~3× the staged upsert here); when that meets a duplicate key it rolls back to a
savepoint and takes the staged path — COPY into a temporary table, then one
`INSERT ... ON CONFLICT DO NOTHING` — and stays on it for a few batches, since duplicates come in
runs (redeliveries, replays). No per-row SQL: `meter_latest` and the rollups' dirty buckets are
computed with numpy and written as arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from energyhub.errors import DatabaseUnavailableError
from energyhub.store.batch import ReadingBatch
from energyhub.store.copy import encode
from energyhub.store.db import Backend
from energyhub.store.devices import PresenceChange, record_presence

CREATE_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS readings_stage "
    "(ts timestamptz, meter_id integer, value double precision) ON COMMIT DELETE ROWS"
)
COPY_STAGE = "COPY readings_stage (ts, meter_id, value) FROM STDIN (FORMAT BINARY)"
COPY_READINGS = "COPY readings (ts, meter_id, value) FROM STDIN (FORMAT BINARY)"
INSERT_NEW = (
    "INSERT INTO readings (ts, meter_id, value) SELECT ts, meter_id, value FROM readings_stage "
    "ON CONFLICT DO NOTHING"
)
UPSERT_LATEST = """
    INSERT INTO meter_latest (meter_id, ts, value)
    SELECT m, 'epoch'::timestamptz + t * interval '1 microsecond', v
    FROM unnest(%s::integer[], %s::bigint[], %s::float8[]) AS u (m, t, v)
    ON CONFLICT (meter_id) DO UPDATE SET ts = excluded.ts, value = excluded.value
    WHERE excluded.ts > meter_latest.ts"""
MARK_DIRTY = """
    INSERT INTO rollup_dirty (bucket)
    SELECT 'epoch'::timestamptz + b * interval '1 microsecond' FROM unnest(%s::bigint[]) AS b
    ON CONFLICT (bucket) DO UPDATE SET bucket = excluded.bucket"""
"""A mark made again gets a new row version, so a refresh that saw the old one keeps it."""
BUCKET_US = 15 * 60 * 1_000_000
"""The 15-minute rollup grain; its buckets align with the Unix epoch and with 2000-01-01."""
STAGED_RUN = 10
"""Batches written through staging after one met a duplicate, before trying the fast path again."""
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
    """Stores ReadingBatches, marks their rollup buckets dirty; makes partitions on plain PG."""

    def __init__(self, pool: AsyncConnectionPool, backend: Backend) -> None:
        self._pool = pool
        self._backend = backend
        self._known_days: set[np.datetime64] = set()
        self._staged_left = 0

    async def write(
        self,
        batch: ReadingBatch,
        rejected: Sequence[RejectedRow] = (),
        presence: Sequence[PresenceChange] = (),
    ) -> WriteResult:
        """Store readings, rejects and device presence in one transaction;
        DatabaseUnavailableError if it cannot."""
        if not len(batch) and not rejected and not presence:
            return WriteResult(0, 0)
        try:
            if self._backend is Backend.POSTGRES and len(batch):
                await self._ensure_partitions(batch)
            async with self._pool.connection() as conn, conn.transaction():
                new = await self._insert(conn, batch) if len(batch) else 0
                if presence:
                    await record_presence(conn, presence)
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
        stream = encode(batch)
        new = await self._copy_new(conn, stream, len(batch))
        if new is None:
            new = await self._copy_staged(conn, stream)
        meter_id, ts_us, value = latest_per_meter(batch)
        await conn.execute(UPSERT_LATEST, (meter_id.tolist(), ts_us.tolist(), value.tolist()))
        buckets = np.unique(batch.ts.astype(np.int64) // BUCKET_US * BUCKET_US)
        await conn.execute(MARK_DIRTY, (buckets.tolist(),))
        return new

    async def _copy_new(self, conn: AsyncConnection, stream: bytes, rows: int) -> int | None:
        """COPY straight into `readings`; None (rolled back) if a row was stored before."""
        if self._staged_left:
            self._staged_left -= 1
            return None
        try:
            async with conn.transaction():
                async with conn.cursor().copy(COPY_READINGS) as copy:
                    await copy.write(stream)
        except psycopg.errors.UniqueViolation:
            self._staged_left = STAGED_RUN
            return None
        return rows

    async def _copy_staged(self, conn: AsyncConnection, stream: bytes) -> int:
        await conn.execute(CREATE_STAGE)
        async with conn.cursor().copy(COPY_STAGE) as copy:
            await copy.write(stream)
        cursor = await conn.execute(INSERT_NEW)
        return cursor.rowcount

    async def _ensure_partitions(self, batch: ReadingBatch) -> None:
        days = np.unique(batch.ts.astype("datetime64[D]"))
        missing = [day for day in days if day not in self._known_days]
        if not missing:
            return
        async with self._pool.connection() as conn:
            await conn.execute(ENSURE_PARTITIONS, ([d.item() for d in missing],))
        self._known_days.update(missing)


def latest_per_meter(
    batch: ReadingBatch,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Each meter's newest reading in the batch: meter ids, epoch microseconds, values."""
    ts_us = batch.ts.astype(np.int64)
    order = np.lexsort((ts_us, batch.meter_id))
    meters = batch.meter_id[order]
    last = np.flatnonzero(np.append(meters[1:] != meters[:-1], True))
    return meters[last], ts_us[order][last], batch.value[order][last]
