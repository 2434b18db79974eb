"""The ingest rule: lag from real readings and rejects the ingest worker really wrote."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import numpy as np
import orjson

from energyhub.alerts.evaluator import Evaluator
from energyhub.scheduler.clock import ManualClock
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, connect, open_pool
from energyhub.store.writer import ReadingWriter, RejectedRow

from .conftest import BROKER_HOST, BROKER_PORT, alert_settings, running, site_with, wait_rows

QUIET_B1 = {"silence": {"enabled": False}, "limit": {"enabled": False}, "soc": {"enabled": False}}
INGEST = {
    "silence": {"enabled": False},
    "ingest": {"max_lag_s": 1.5, "max_rejects_per_min": 5, "for_min": 0, "clear_min": 0},
}
T0 = datetime(2026, 11, 20, 2, tzinfo=UTC)


def reading(value: float) -> bytes:
    return orjson.dumps({"ts": int(time.time() * 1000), "value": value})


async def publish_mixed(prefix: str, payloads: list[bytes | None], every_s: float) -> None:
    """b1/main: None publishes a good reading stamped now, bytes are published as they are."""
    async with aiomqtt.Client(BROKER_HOST, BROKER_PORT, protocol=aiomqtt.ProtocolVersion.V5) as c:
        for payload in payloads:
            body = reading(100.0) if payload is None else payload
            await c.publish(f"{prefix}/p1/b1/main", body, qos=1)
            await asyncio.sleep(every_s)


def count(n: int) -> Any:
    return lambda rows: len(rows) == n


def all_closed(n: int) -> Any:
    return lambda rows: len(rows) == n and all(r[4] is not None for r in rows)


async def test_lag_and_rejects_through_the_ingest_worker(site_db: str, prefix: str) -> None:
    settings = alert_settings(site_db, prefix)
    async with running(settings, site_with(INGEST, QUIET_B1)):
        await publish_mixed(prefix, [None] * 10, 0.1)
        assert await wait_rows(site_db, "ingest", count(0), 1) == []  # fresh data, no rejects
        stopped = time.monotonic()
        rows = await wait_rows(site_db, "ingest", count(1), timeout_s=10)  # the stream stops
        assert 1.0 < time.monotonic() - stopped < 4.0
        assert rows[0][1:3] == ("p1", "") and rows[0][5]["lag_s"] > 1.5
        assert rows[0][5]["rejects_per_min"] == 0
        await publish_mixed(prefix, [None] * 3, 0.1)  # data returns: closes
        await wait_rows(site_db, "ingest", all_closed(1), timeout_s=10)

        future = orjson.dumps({"ts": int((time.time() + 3600) * 1000), "value": 1.0})
        bad: list[bytes | None] = [b"not json", None, future, None] * 4  # 8 rejects in 1.6 s
        await publish_mixed(prefix, bad + [None] * 5, 0.1)
        rows = await wait_rows(site_db, "ingest", count(2), timeout_s=10)
    values = rows[1][5]
    assert values["rejects_per_min"] >= 5 and values["lag_s"] < 1.5, values
    async with connect(site_db) as conn:
        cur = await conn.execute("SELECT topic, reason FROM rejected ORDER BY id")
        rejected = await cur.fetchall()
    assert len(rejected) == 8 and {t for t, _ in rejected} == {f"{prefix}/p1/b1/main"}


async def test_reject_rate_is_counted_incrementally_and_closes_after_its_window(
    site_db: str,
) -> None:
    site = site_with(INGEST, QUIET_B1)
    clock = ManualClock(T0)
    async with open_pool(site_db, max_size=2) as pool:
        writer = ReadingWriter(pool, Backend.POSTGRES)
        async with pool.connection() as conn:
            row = await (await conn.execute("SELECT id FROM meters WHERE name = 'main'")).fetchone()
        assert row is not None
        main = int(row[0])

        async def write(at: datetime, rejects: int) -> None:
            ts = np.array([at.replace(tzinfo=None)], dtype="datetime64[us]")
            batch = ReadingBatch.from_columns(ts, [main], [100.0])
            bad = [RejectedRow(at, "p/p1/b1/main", "x", "invalid JSON")] * rejects
            await writer.write(batch, bad)

        await write(T0, 100)  # before the evaluator started: history, never counted
        evaluator = Evaluator(pool, site, clock)
        await evaluator.load()
        assert await evaluator.tick() == []
        for second, rejects in ((10, 3), (20, 3)):  # 6 within a minute: over 5
            await clock.set(T0 + timedelta(seconds=second))
            await write(clock.now(), rejects)
            events = await evaluator.tick()
        assert [(e.event, e.alert.rule) for e in events] == [("opened", "ingest")]
        assert events[0].alert.opening_values == {"lag_s": 0.0, "rejects_per_min": 6.0}
        await clock.set(T0 + timedelta(seconds=60))
        await write(clock.now(), 0)
        assert await evaluator.tick() == []  # the 6 are still within the last minute
        await clock.set(T0 + timedelta(seconds=81))
        await write(clock.now(), 0)
        events = await evaluator.tick()
    assert [e.event for e in events] == ["closed"]
    assert events[0].alert.closing_values == {"lag_s": 0.0, "rejects_per_min": 0.0}
