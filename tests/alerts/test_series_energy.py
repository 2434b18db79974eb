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


async def _b01_cooling(pg_url: str, site_path: Path) -> int:
    """The example loaded into a migrated database: b01's cooling counter's id."""
    async with connect(pg_url) as conn:
        await migrate(conn)
        await sync_site(conn, load_site(site_path))
        cur = await conn.execute(
            "SELECT id FROM meters WHERE site_id = 'b01' AND name = 'cooling' AND active"
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def _write(pg_url: str, meter_id: int, stamps: np.ndarray, values: list[float]) -> None:
    async with open_pool(pg_url, max_size=1) as pool:
        await ReadingWriter(pool, Backend.POSTGRES).write(
            ReadingBatch.from_columns(stamps, np.full(len(values), meter_id), values)
        )


async def test_a_counter_reset_keeps_its_energy_in_the_alert_buckets(
    pg_url: str, example_site_path: Path
) -> None:
    meter_id = await _b01_cooling(pg_url, example_site_path)
    # the counter: +1 kWh every 5 min from 09:00, reset to 0 right after 10:30
    values = [100.0 + i for i in range(19)] + [float(i) for i in range(1, 8)]
    stamps = np.array(
        [int((FIRST + timedelta(minutes=5 * i)).timestamp() * 1e6) for i in range(26)],
        dtype="datetime64[us]",
    )
    await _write(pg_url, meter_id, stamps, values)
    reader = BucketReader({"b01": (meter_id,)}, {meter_id}, FIRST, timedelta(0))
    async with connect(pg_url) as conn:
        await refresh_rollups(conn, Backend.POSTGRES)
        buckets = await reader.read(conn, FIRST + timedelta(hours=3))
    # 12 kW throughout (1 kWh per 5 min): the reset bucket keeps the rise before the reset, and
    # the first and last buckets are the mean over the steps they hold, not diluted to 15 min
    assert len(buckets["b01"]) == 9  # 09:00 … 11:00
    assert [kw for _, kw in buckets["b01"]] == pytest.approx([12.0] * 9, rel=1e-12)


async def test_the_bucket_after_a_counters_two_day_gap_reads_the_gaps_mean_power(
    pg_url: str, example_site_path: Path
) -> None:
    """The reader's cursor moves past a 2-day gap a tick at a time: the first bucket after it
    still reads the gap's mean power (as the load route does), not nothing."""
    meter_id = await _b01_cooling(pg_url, example_site_path)
    # 12 kW read every 15 min, silent for two days, then 24 kW over the gap and after it
    hours = [0.0, 0.25, 0.5, 48.5, 48.75, 49.0]
    values = [100.0, 103.0, 106.0, 106.0 + 48 * 24, 106.0 + 48 * 24 + 6, 106.0 + 48 * 24 + 12]
    stamps = np.array(
        [int((FIRST + timedelta(hours=h)).timestamp() * 1e6) for h in hours],
        dtype="datetime64[us]",
    )
    await _write(pg_url, meter_id, stamps, values)
    reader = BucketReader({"b01": (meter_id,)}, {meter_id}, FIRST, timedelta(0))
    async with connect(pg_url) as conn:
        await refresh_rollups(conn, Backend.POSTGRES)
        first = await reader.read(conn, FIRST + timedelta(hours=1))
        assert await reader.read(conn, FIRST + timedelta(hours=30)) == {}  # a tick in the gap
        after = await reader.read(conn, FIRST + timedelta(hours=49, minutes=15))
    assert [kw for _, kw in first["b01"]] == pytest.approx([12.0] * 2, rel=1e-12)
    assert after["b01"] == [
        (FIRST + timedelta(hours=48, minutes=30), pytest.approx(24.0, rel=1e-12)),
        (FIRST + timedelta(hours=48, minutes=45), pytest.approx(24.0, rel=1e-12)),
        (FIRST + timedelta(hours=49), pytest.approx(24.0, rel=1e-12)),
    ]
