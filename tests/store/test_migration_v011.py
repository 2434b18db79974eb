"""Migration 011 upgrades a database with readings: its rollups are rebuilt to the new energy
rule, with progress, and rebuilding again changes nothing (both storage paths)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from energyhub.store import migrations
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import connect, installed_backend, open_pool
from energyhub.store.migrations import LATEST_VERSION, migrate
from energyhub.store.migrations.base import MigrationContext
from energyhub.store.migrations.v011_interval_energy import rebuild_rollups
from energyhub.store.queries import STEPS, meter_series
from energyhub.store.writer import ReadingWriter

FIRST = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
WINDOW = (datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))
ROLLUPS = "SELECT * FROM readings_1h ORDER BY meter_id, bucket"


async def test_upgrade_rebuilds_the_rollups_of_stored_readings(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:10])
    monkeypatch.setattr(migrations, "LATEST_VERSION", 10)
    async with connect(store_url) as conn:
        await migrate(conn)
        await conn.execute("INSERT INTO sites (id, kind) VALUES ('b', 'building')")
        cur = await conn.execute(
            "INSERT INTO meters (site_id, name, carrier, quantity) "
            "VALUES ('b', 'c', 'electricity', 'energy_kwh') RETURNING id"
        )
        meter_id = int((await cur.fetchall())[0][0])
        backend = await installed_backend(conn)
    # the counter: +1 kWh every 5 min, reset right after 10:30; old rollups say 18 kWh
    ts = [FIRST + timedelta(minutes=5 * i) for i in range(26)]
    values = [100.0 + i for i in range(19)] + [float(i) for i in range(1, 8)]
    stamps = np.array([t.replace(tzinfo=None) for t in ts], dtype="datetime64[us]")
    async with open_pool(store_url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(
            ReadingBatch.from_columns(stamps, np.full(26, meter_id), values)
        )
    monkeypatch.undo()
    heard: list[str] = []
    async with connect(store_url) as conn:
        report = await migrate(conn, progress=heard.append)
        assert report.applied[0] == "011 energy from consecutive readings in every rollup"
        assert [step[:3] for step in report.applied] == [
            f"{v:03d}" for v in range(11, LATEST_VERSION + 1)
        ]  # and the versions after it
        assert heard == [
            "rollups rebuilt: 1/1 days (to 2026-11-21)",
            "counter load rebuilt: 1/1 days (to 2026-11-21)",  # version 18
        ]
        for step in STEPS.values():
            series = await meter_series(conn, backend, [meter_id], *WINDOW, step)
            assert series["energy_kwh"].sum() == 25.0, step
        before = await (await conn.execute(ROLLUPS)).fetchall()
        context = MigrationContext(backend, 730, 7, 7, progress=heard.append)
        async with conn.transaction():
            assert await rebuild_rollups(conn, context) == 1
        assert await (await conn.execute(ROLLUPS)).fetchall() == before
        assert len(before) == 3  # 09:00, 10:00 and 11:00
