"""The ingest rule: lag from real readings and rejects the ingest worker really wrote."""

from __future__ import annotations

import asyncio
import copy
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import numpy as np
import orjson

from energyhub.alerts.evaluator import Evaluator
from energyhub.clock import ManualClock
from energyhub.sites import SiteFile, parse_site
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, connect, open_pool
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter, RejectedRow

from .conftest import (
    BROKER_HOST,
    BROKER_PORT,
    SITE,
    alert_settings,
    running,
    site_with,
    wait_rows,
)

OFF = {"enabled": False}
QUIET_B1 = {"silence": OFF, "limit": OFF, "soc": OFF}
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


def two_parks() -> SiteFile:
    """The small site and a second park p2 with one building b3; both watch their ingest."""
    data = copy.deepcopy(SITE)
    p1 = data["city"]["parks"][0]
    p1["alerts"] = INGEST
    p1["buildings"][0]["alerts"] = QUIET_B1
    b3 = {"id": "b3", "class": "hotel", "floor_area_m2": 500,
          "meters": [{"id": "main", "carrier": "electricity", "quantity": "power_kw"}],
          "alerts": QUIET_B1 | {"night_base": OFF, "forecast": OFF}}  # fmt: skip
    park2 = {"id": "p2", "grid": {"import_max_kw": 800}, "alerts": INGEST, "buildings": [b3]}
    data["city"]["parks"].append(park2)
    return parse_site(data, "two-parks")


async def test_reject_rate_per_park_counted_incrementally_closes_after_its_window(
    pg_url: str,
) -> None:
    site = two_parks()
    async with connect(pg_url) as conn:
        await migrate(conn)
        await sync_site(conn, site)
        cur = await conn.execute("SELECT id FROM meters WHERE name = 'main' ORDER BY site_id")
        meters = [int(m) for (m,) in await cur.fetchall()]  # b1/main, b3/main
    clock = ManualClock(T0)

    def rejects(topic: str, n: int) -> list[RejectedRow]:
        return [RejectedRow(clock.now(), topic, "x", "invalid JSON")] * n

    async with open_pool(pg_url, max_size=2) as pool:
        writer = ReadingWriter(pool, Backend.POSTGRES)

        async def write(bad: list[RejectedRow]) -> None:
            """A reading on every main meter now (no lag), and these rejects."""
            ts = np.array([clock.now().replace(tzinfo=None)] * 2, dtype="datetime64[us]")
            await writer.write(ReadingBatch.from_columns(ts, meters, [100.0, 100.0]), bad)

        await write(rejects("energyhub/p1/b1/main", 100))  # before the start: never counted
        evaluator = Evaluator(pool, site, clock)
        await evaluator.load()
        assert await evaluator.tick() == []
        await clock.set(T0 + timedelta(seconds=10))
        await write(rejects("energyhub/p1/b1/main", 3) + rejects("tele/plug-7/SENSOR", 2))
        assert await evaluator.tick() == []  # p1: 5, p2: 2 (the device topic names no park)
        await clock.set(T0 + timedelta(seconds=20))
        await write(rejects("energyhub/p1/b1/main", 1) + rejects("energyhub/p2/b3/main", 1))
        events = await evaluator.tick()
        assert [(e.event, e.alert.site_id) for e in events] == [("opened", "p1")]
        assert events[0].alert.opening_values == {"lag_s": 0.0, "rejects_per_min": 6.0}
        await clock.set(T0 + timedelta(seconds=60))
        await write([])
        assert await evaluator.tick() == []  # the 6 are still within the last minute
        await clock.set(T0 + timedelta(seconds=81))
        await write([])
        events = await evaluator.tick()
    assert [(e.event, e.alert.site_id) for e in events] == [("closed", "p1")]
    assert events[0].alert.closing_values == {"lag_s": 0.0, "rejects_per_min": 0.0}
