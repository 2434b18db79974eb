"""Migration 017 upgrades a version-16 database on its own frozen members rule: the members and
load rollups it leaves are what the application's rule gives today, and a later change to that
rule (`siteload.sync_members`) cannot change what the upgrade does."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from energyhub.sites import parse_site
from energyhub.store import migrations, siteload, sync
from energyhub.store.db import connect, installed_backend, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.migrations import migrate
from energyhub.store.siteload import sync_members
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter
from tests.store.test_queries import START, meter_ids, synthetic
from tests.store.test_site_load import (
    _electricity,
    _with_park_main,
    _write_park_main,
    assert_rollup_matches_meters,
)

MEMBERS = "SELECT site_id, meter_id, counts_from FROM site_load_members ORDER BY 1, 2"
ROLLUP = "SELECT * FROM site_load_15m ORDER BY site_id, bucket, carrier"


async def _no_members(conn: object) -> list[str]:
    """Version 16 has no `counts_from` for the live rule to write: its members stay unfilled."""
    return []


async def _changed_rule(conn: object) -> list[str]:
    raise AssertionError("migration 017 called the application's live sync_members")


async def test_upgrade_from_16_is_frozen_and_agrees_with_todays_rule(
    store_url: str, example_site_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Park expo measured at its connection (2,000 kW) on the first day, its main then retired:
    the upgrade gives the buildings' mains a `counts_from` at the main's end, the first day stays
    2,000 kW, the rollups equal the summed meters, and the live rule has nothing left to change."""
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:16])
    monkeypatch.setattr(migrations, "LATEST_VERSION", 16)
    monkeypatch.setattr(sync, "sync_members", _no_members)
    plain = yaml.safe_load(example_site_path.read_text())
    async with connect(store_url) as conn:
        await migrate(conn)
        await sync_site(conn, _with_park_main(yaml.safe_load(example_site_path.read_text()), None))
        ids = await meter_ids(conn)
        backend = await installed_backend(conn)
    batch, _ = synthetic(ids)
    async with open_pool(store_url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(batch)
    await _write_park_main(store_url, backend, ids["expo/main"], 0, 2000.0)
    async with connect(store_url) as conn:
        await sync_site(conn, parse_site(plain))  # the park main is retired
        await refresh_rollups(conn, backend)
        none = await (await conn.execute("SELECT count(*) FROM site_load_members")).fetchone()
        assert none == (0,)  # version 16: not filled yet
    monkeypatch.undo()

    monkeypatch.setattr(siteload, "sync_members", _changed_rule)
    async with connect(store_url) as conn:
        report = await migrate(conn)
        assert [step[:3] for step in report.applied] == [
            f"{v:03d}" for v in range(17, migrations.LATEST_VERSION + 1)
        ]  # and the versions after it
        members = await (await conn.execute(MEMBERS)).fetchall()
        rollup = await (await conn.execute(ROLLUP)).fetchall()
    monkeypatch.undo()

    async with connect(store_url) as conn:
        ends = {since for site, meter, since in members if site == "expo" and since is not None}
        assert len(ends) == 1  # b01's and b02's mains count from the retired main's end
        (end,) = ends
        assert end == START + timedelta(days=1)
        counted = {(site, meter) for site, meter, since in members if since is not None}
        assert {
            (park, ids[main]) for park in ("expo", "shanghai") for main in ("b01/main", "b02/main")
        } <= counted
        assert {site for site, _ in counted} == {"expo", "shanghai"}  # b01 keeps its own always
        for site in ("expo", "shanghai"):
            electricity = await _electricity(conn, backend, site, "15m")
            first = electricity[electricity.index < end]
            np.testing.assert_allclose(first, 2000.0, rtol=1e-9, err_msg=site)
        await assert_rollup_matches_meters(conn, backend)
        assert await sync_members(conn) == []  # today's rule agrees with what the upgrade did
        assert await (await conn.execute(MEMBERS)).fetchall() == members
        assert await (await conn.execute(ROLLUP)).fetchall() == rollup
