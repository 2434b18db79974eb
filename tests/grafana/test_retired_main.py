"""The park panels read a park whose connection meter was retired as the store does: the
connection's kW before its readings end, its buildings' mains after, never both."""

from __future__ import annotations

import asyncio
import copy
from datetime import timedelta

import pandas as pd
import psycopg
import pytest

from energyhub.grafana import carbon, park
from energyhub.sites import parse_site
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, connect, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter
from tests.carbon.conftest import BEFORE, DAY, SITE, load
from tests.grafana.conftest import PanelDb, run
from tests.grafana.macros import Chosen, TimeRange
from tests.grafana.test_values import _moment

NOON = DAY + timedelta(hours=12)


async def _retired_at_noon(url: str) -> None:
    """The carbon tests' city with p2 measured by `conn` (45 kW) until noon, then retired."""
    data = copy.deepcopy(SITE)
    data["city"]["parks"][1]["meters"] = [
        {"id": "conn", "carrier": "electricity", "quantity": "power_kw"}
    ]
    await load(url, parse_site(data))
    steps = pd.date_range(BEFORE, NOON, freq="15min", inclusive="left").tz_convert("UTC")
    async with connect(url) as conn:
        cur = await conn.execute("SELECT id FROM meters WHERE site_id = 'p2' AND name = 'conn'")
        meter_id = int((await cur.fetchall())[0][0])
        async with open_pool(url, max_size=1) as pool:
            await ReadingWriter(pool, Backend.POSTGRES).write(
                ReadingBatch.from_columns(
                    steps.tz_convert(None).values, [meter_id] * len(steps), [45.0] * len(steps)
                )
            )
        await refresh_rollups(conn, Backend.POSTGRES)
        await sync_site(conn, parse_site(copy.deepcopy(SITE)))


def test_a_retired_park_main_is_the_park_import_until_it_ends(pg_url: str) -> None:
    asyncio.run(_retired_at_noon(pg_url))
    db = PanelDb(pg_url, Backend.POSTGRES, TimeRange(DAY, DAY + timedelta(days=1)), {}, {})
    chosen = {"park": Chosen(("p2",), False), "building": Chosen(("b3",), True)}
    with psycopg.connect(pg_url, autocommit=True) as conn:
        _, rows = run(conn, db, park.PARK_IMPORT, chosen, "15m")
        got = {_moment(t): float(kw) for t, kw, _ in rows}
        _, peak = run(conn, db, park.PEAK, chosen, "15m")
        _, by_site = run(conn, db, carbon.BY_BUILDING, chosen, "15m")
    before = {t: kw for t, kw in got.items() if t < NOON}
    after = {t: kw for t, kw in got.items() if t >= NOON}
    assert len(before) == len(after) == 48
    assert list(before.values()) == pytest.approx([45.0] * 48)  # the connection, not 45 + 30
    assert list(after.values()) == pytest.approx([30.0] * 48)  # b3's main
    assert peak[0][0] == pytest.approx(45.0)
    kg = {str(site): float(value) for site, value, *_ in by_site}
    assert sum(kg.values()) == pytest.approx((45 * 12 + 30 * 12) * 0.5)
