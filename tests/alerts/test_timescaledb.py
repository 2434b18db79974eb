"""The silence and limit rules on the TimescaleDB storage path (hypertable, one connection)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from energyhub.alerts.evaluator import Evaluator
from energyhub.clock import ManualClock
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, connect, installed_backend, open_pool
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter

from .conftest import site_with

pytestmark = pytest.mark.timescaledb

OFF = {"enabled": False}
B1 = {
    "silence": {"meters": ["main"], "intervals": 2, "interval_s": 60, "clear_min": 0},
    "limit": {"for_min": 2, "clear_min": 1},
    "soc": OFF,
    "night_base": OFF,
    "forecast": OFF,
}
T0 = datetime(2026, 11, 20, 2, tzinfo=UTC)


async def test_silence_and_limit_on_timescaledb(tsdb_url: str) -> None:
    site = site_with({"silence": OFF, "ingest": OFF, "limit": OFF}, B1)
    async with connect(tsdb_url) as conn:
        await migrate(conn, timescaledb="require")
        assert await installed_backend(conn) is Backend.TIMESCALEDB
        await sync_site(conn, site)
        cur = await conn.execute("SELECT id FROM meters WHERE site_id = 'b1' AND name = 'main'")
        row = await cur.fetchone()
    assert row is not None
    main = int(row[0])
    clock = ManualClock(T0)
    async with open_pool(tsdb_url, max_size=1) as pool:
        writer = ReadingWriter(pool, Backend.TIMESCALEDB)
        evaluator = Evaluator(pool, site, clock)
        await evaluator.load()
        assert {(w.rule, w.subject) for w in evaluator.watches} == {
            ("silence", "main"),
            ("limit", ""),
        }
        log: list[tuple[int, str, str]] = []
        # One reading a minute: 300 kW, 480 kW (over 450) for 3 minutes, 300 kW, then nothing.
        for minute, kw in enumerate([300.0, 480.0, 480.0, 480.0, 300.0, 300.0, None, None, None]):
            at = T0 + timedelta(minutes=minute)
            await clock.set(at)
            if kw is not None:
                ts = np.array([at.replace(tzinfo=None)], dtype="datetime64[us]")
                await writer.write(ReadingBatch.from_columns(ts, [main], [kw]))
            log += [(minute, e.event, e.alert.rule) for e in await evaluator.tick()]
    # Limit: over from minute 1, held 2 min → opens at 3; under from 4, held 1 min → closes at 5.
    # Silence: last reading at minute 5, silent > 2 min → opens at 8.
    assert log == [(3, "opened", "limit"), (5, "closed", "limit"), (8, "opened", "silence")]
    async with connect(tsdb_url) as conn:
        cur = await conn.execute(
            "SELECT rule, opened_at, closed_at, opening_values->>'load_kw' FROM alerts ORDER BY id"
        )
        rows = await cur.fetchall()
    assert rows == [
        ("limit", T0 + timedelta(minutes=3), T0 + timedelta(minutes=5), "480.0"),
        ("silence", T0 + timedelta(minutes=8), None, None),
    ]
