"""Migration 018 upgrades a database whose load rollups read a counter's gap as a spike: the
rebuilt rollups give the gap's mean power, keep every energy figure, and equal what a fresh
refresh writes (both storage paths)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from energyhub.sites import SiteFile
from energyhub.store import migrations
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import connect, installed_backend, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter

FIRST = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
GAP_BUCKET = FIRST + timedelta(hours=2)
LOAD = """SELECT site_id, bucket, carrier, power_kw, energy_kwh, covered_s, meters
FROM site_load_{grain} ORDER BY site_id, bucket, carrier"""
PEAK = "SELECT max(power_kw) FROM site_load_15m WHERE site_id = 'b01' AND carrier = 'cooling'"


async def test_upgrade_from_17_rebuilds_a_counters_gap_as_its_mean(
    store_url: str, example_site: SiteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """b01's cooling counter at 60 kW, silent 10:00–11:00 while it drew 120 kW: version 17 reads
    the 11:00 bucket as 480 kW; after the upgrade it is 120 kW and the energy is unchanged."""
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:17])
    monkeypatch.setattr(migrations, "LATEST_VERSION", 17)
    async with connect(store_url) as conn:
        await migrate(conn)
        await sync_site(conn, example_site)
        cur = await conn.execute(
            "SELECT id FROM meters WHERE site_id = 'b01' AND name = 'cooling' AND active"
        )
        meter_id = int((await cur.fetchall())[0][0])
        backend = await installed_backend(conn)
    ts = [FIRST + timedelta(minutes=15 * i) for i in range(5)]
    ts += [GAP_BUCKET + timedelta(minutes=15 * i) for i in range(5)]
    values = [1000.0 + 15.0 * i for i in range(5)]
    values += [values[-1] + 120.0 + 15.0 * i for i in range(5)]
    stamps = np.array([t.replace(tzinfo=None) for t in ts], dtype="datetime64[us]")
    async with open_pool(store_url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(
            ReadingBatch.from_columns(stamps, np.full(len(ts), meter_id), values)
        )
    async with connect(store_url) as conn:
        await refresh_rollups(conn, backend)
        assert await (await conn.execute(PEAK)).fetchone() == (pytest.approx(480.0),)
        old = {
            g: await (await conn.execute(LOAD.format(grain=g))).fetchall() for g in ("15m", "1h")
        }
    monkeypatch.undo()

    async with connect(store_url) as conn:
        report = await migrate(conn)
        assert [step[:3] for step in report.applied] == [
            f"{v:03d}" for v in range(18, migrations.LATEST_VERSION + 1)
        ]  # and the versions after it
        assert await (await conn.execute(PEAK)).fetchone() == (pytest.approx(120.0),)
        new = {
            g: await (await conn.execute(LOAD.format(grain=g))).fetchall() for g in ("15m", "1h")
        }
        for grain in ("15m", "1h"):
            # the same buckets, energy, covered seconds and meters; only kW may move
            assert [r[:3] + r[4:] for r in new[grain]] == [r[:3] + r[4:] for r in old[grain]]
        kw = {(r[0], r[1], r[2]): r[3] for r in new["15m"]}
        assert kw[("b01", GAP_BUCKET, "cooling")] == pytest.approx(120.0, rel=1e-12)
        await conn.execute(
            "SELECT energyhub_refresh_site_load(%s, %s)", (FIRST, FIRST + timedelta(days=1))
        )
        for grain in ("15m", "1h"):
            assert await (await conn.execute(LOAD.format(grain=grain))).fetchall() == new[grain]
