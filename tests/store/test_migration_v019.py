"""Migration 019 upgrades a database whose energy rule predates the subnormal guard: a reading of
5e-324 kW failed its meter's rollup refresh there ("underflow"); after the upgrade the refresh
runs and the buckets beside it keep their energy (both storage paths)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
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

RULE_BEFORE_THE_GUARD = """CREATE OR REPLACE FUNCTION energyhub_step_kwh(
        quantity text, rollover_kwh double precision, nominal_s double precision,
        prev_ts timestamptz, prev_value double precision, ts timestamptz, value double precision
    ) RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE
            WHEN quantity = 'energy_kwh' THEN
                CASE WHEN prev_value IS NULL THEN NULL
                     WHEN value >= prev_value THEN value - prev_value
                     WHEN rollover_kwh IS NOT NULL AND prev_value > 0.5 * rollover_kwh
                         THEN value + rollover_kwh - prev_value
                     ELSE value
                END
            WHEN quantity = 'power_kw' THEN
                value * energyhub_step_s(quantity, nominal_s, prev_ts, ts) / 3600.0
        END $$"""
"""energyhub_step_kwh as version 11 installed it before 2026-12-06 (git: dc4f340^)."""

ENERGY = """SELECT bucket, energy_kwh FROM readings_15m WHERE meter_id = %s ORDER BY bucket"""


async def test_upgrade_from_18_counts_no_energy_for_a_subnormal_reading(
    store_url: str, example_site: SiteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:18])
    monkeypatch.setattr(migrations, "LATEST_VERSION", 18)
    async with connect(store_url) as conn:
        await migrate(conn)
        await conn.execute(RULE_BEFORE_THE_GUARD)
        await sync_site(conn, example_site)
        cur = await conn.execute(
            "SELECT id FROM meters WHERE site_id = 'b01' AND quantity = 'power_kw' AND active "
            "ORDER BY id LIMIT 1"
        )
        meter_id = int((await cur.fetchall())[0][0])
        backend = await installed_backend(conn)
    # 100 kW every 5 minutes 09:00–09:55, then two subnormal readings in the 10:00 bucket
    ts = [FIRST + timedelta(minutes=5 * i) for i in range(14)]
    values = [100.0] * 12 + [5e-324] * 2
    stamps = np.array([t.replace(tzinfo=None) for t in ts], dtype="datetime64[us]")
    async with open_pool(store_url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(
            ReadingBatch.from_columns(stamps, np.full(len(ts), meter_id), values)
        )
    async with connect(store_url) as conn:
        with pytest.raises(psycopg.errors.NumericValueOutOfRange, match="underflow"):
            await refresh_rollups(conn, backend)
    monkeypatch.undo()

    async with connect(store_url) as conn:
        report = await migrate(conn)
        assert [step[:3] for step in report.applied] == [
            f"{v:03d}" for v in range(19, migrations.LATEST_VERSION + 1)
        ]  # and the versions after it
        await refresh_rollups(conn, backend)
        rows = await (await conn.execute(ENERGY, (meter_id,))).fetchall()
    energy = {bucket: kwh for bucket, kwh in rows}
    # a bucket holds the steps after its first reading (that one's step is added on reading)
    assert energy[FIRST + timedelta(hours=1)] == 0.0
    for quarter in range(4):
        assert energy[FIRST + timedelta(minutes=15 * quarter)] == pytest.approx(2 * 100 / 12)
