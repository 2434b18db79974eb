"""Migration 020 upgrades a database whose load rollups lost a counter's gap longer than a day (a
refresh that began after it looked back only a day): the bucket after the gap gets its energy
(both storage paths)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from energyhub.sites import SiteFile
from energyhub.store import migrations
from energyhub.store.db import connect
from energyhub.store.migrations import migrate
from energyhub.store.queries import STEPS
from tests.store.test_counter_gap import (
    AFTER,
    BEFORE,
    KW,
    TOTAL_KWH,
    _hours,
    _ingest_and_refresh,
    _load,
    _setup,
)


async def test_upgrade_from_19_recomputes_the_bucket_after_a_long_gap(
    store_url: str, example_site: SiteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:19])
    monkeypatch.setattr(migrations, "LATEST_VERSION", 19)
    meter_id, backend = await _setup(store_url, example_site)
    await _ingest_and_refresh(store_url, backend, meter_id, BEFORE)
    await _ingest_and_refresh(store_url, backend, meter_id, AFTER)
    gap_kwh = KW * (AFTER[0] - BEFORE[-1])
    async with connect(store_url) as conn:
        for name in ("15m", "1h"):
            load = await _load(conn, backend, STEPS[name])
            assert load["energy_kwh"].sum() == pytest.approx(TOTAL_KWH - gap_kwh), name
    monkeypatch.undo()

    async with connect(store_url) as conn:
        report = await migrate(conn)
        assert [step[:3] for step in report.applied] == [
            f"{v:03d}" for v in range(20, migrations.LATEST_VERSION + 1)
        ]
        gap_end = _hours([AFTER[0]])[0]
        for name in ("15m", "1h"):
            load = (await _load(conn, backend, STEPS[name])).set_index("bucket")
            assert load["energy_kwh"].sum() == pytest.approx(TOTAL_KWH, rel=1e-12), name
            assert load.loc[gap_end, "energy_kwh"] == pytest.approx(gap_kwh, rel=1e-12), name
        # nothing else moved: a refresh of the whole span gives the same rows
        before = {name: await _load(conn, backend, STEPS[name]) for name in ("15m", "1h")}
        await conn.execute(
            "SELECT energyhub_refresh_site_load(%s, %s)",
            (gap_end - timedelta(days=4), gap_end + timedelta(days=2)),
        )
        for name in ("15m", "1h"):
            after = await _load(conn, backend, STEPS[name])
            assert after.equals(before[name]), name
