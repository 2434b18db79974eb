"""The alert evaluator's load buckets use the store's energy rule: a reset keeps the rise
before it, and a counter's kW is its mean power over the steps a bucket holds (as the load route
and the carbon report do)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from energyhub.alerts.series import BucketReader
from energyhub.sites import load_site
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, connect, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter

FIRST = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


async def test_a_counter_reset_keeps_its_energy_in_the_alert_buckets(
    pg_url: str, example_site_path: Path
) -> None:
    async with connect(pg_url) as conn:
        await migrate(conn)
        await sync_site(conn, load_site(example_site_path))
        cur = await conn.execute(
            "SELECT id FROM meters WHERE site_id = 'b01' AND name = 'cooling' AND active"
        )
        row = await cur.fetchone()
        assert row is not None
        meter_id = int(row[0])
    # the counter: +1 kWh every 5 min from 09:00, reset to 0 right after 10:30
    values = [100.0 + i for i in range(19)] + [float(i) for i in range(1, 8)]
    stamps = np.array(
        [int((FIRST + timedelta(minutes=5 * i)).timestamp() * 1e6) for i in range(26)],
        dtype="datetime64[us]",
    )
    async with open_pool(pg_url, max_size=1) as pool:
        await ReadingWriter(pool, Backend.POSTGRES).write(
            ReadingBatch.from_columns(stamps, np.full(26, meter_id), values)
        )
    reader = BucketReader({"b01": (meter_id,)}, {meter_id}, FIRST, timedelta(0))
    async with connect(pg_url) as conn:
        await refresh_rollups(conn, Backend.POSTGRES)
        buckets = await reader.read(conn, FIRST + timedelta(hours=3))
    # 12 kW throughout (1 kWh per 5 min): the reset bucket keeps the rise before the reset, and
    # the first and last buckets are the mean over the steps they hold, not diluted to 15 min
    assert len(buckets["b01"]) == 9  # 09:00 … 11:00
    assert [kw for _, kw in buckets["b01"]] == pytest.approx([12.0] * 9, rel=1e-12)
