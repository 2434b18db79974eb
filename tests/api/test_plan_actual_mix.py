"""Plan vs actual for every asset mix: each building, park and the city of the example site, and
a site with no assets at all, planned, stored and read back through the API and the plan page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI

from energyhub.api.app import create_app
from energyhub.api.keys import create_key
from energyhub.optimize import plan
from energyhub.optimize.scope import resolve_scopes
from energyhub.plans.metered import storages
from energyhub.plans.store import store_plan
from energyhub.sites import SiteFile, load_site
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import connect, installed_backend, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter
from tests.api.conftest import SITE_FILE, World, plan_inputs, settings_for


@pytest.fixture
def world(shared_world: World) -> World:
    """Read-only but for the plans the test stores."""
    return shared_world


def every_site() -> list[tuple[str, str]]:
    site = load_site(SITE_FILE)
    found = [("city", site.city.id)]
    for park in site.city.parks:
        found.append(("park", park.id))
        found += [("building", b.id) for b in park.buildings]
    return found


async def test_every_building_park_and_the_city_reads_back(
    client: httpx.AsyncClient, world: World
) -> None:
    site = load_site(SITE_FILE)
    inputs = plan_inputs(site, 4, start="2026-11-20 12:00")  # hours the world has readings of
    hours = pd.DatetimeIndex(inputs.index).tz_convert("UTC")
    for level, site_id in every_site():
        mine = inputs.copy()
        for scope in resolve_scopes(site, level, site_id):
            for node in scope.nodes[1:] if level != "building" else scope.nodes:
                for carrier in ("heat", "cooling"):  # served at the park, not alone
                    if level == "building" and not node.produces(carrier):
                        mine[f"{node.id}:{carrier}_kw"] = 0.0
        async with connect(world.url) as conn:
            record = await store_plan(conn, plan(site, mine, level=level, site_id=site_id))
        answer = await client.get(f"/plans/{record.id}/actual")
        assert answer.status_code == 200, (site_id, answer.text)
        actual = answer.json()
        assert len(actual["steps"]) == 4 and actual["level"] == level
        expected = [a.id for s in resolve_scopes(site, level, site_id) for a in storages(s)]
        assert [s["asset_id"] for s in actual["steps"][0]["soc"]] == expected, site_id
        mains = [
            world.series[name].resample("1h").mean().reindex(hours).to_numpy()
            for name in world.series
            if name.endswith("/main") and _under(site, level, site_id, name.split("/")[0])
        ]
        metered = np.sum(mains, axis=0)
        got = [s["actual_import_kw"] for s in actual["steps"]]
        if _shared_unread(site, level, site_id, world):
            # a park without a main meter of its own: its shared assets' meters have no
            # readings here, so what passed its connection is unknown
            assert got == [None] * 4, site_id
        else:
            np.testing.assert_allclose(got, metered, rtol=1e-9, err_msg=site_id)
        batteries = {a.id for s in resolve_scopes(site, level, site_id) for a in storages(s)}
        batteries = {b for b in batteries if b.endswith("-bess")}
        if batteries <= {"b01-bess"}:  # the only battery the world meters
            assert actual["compared_steps"] == 4 and actual["basis"] == "metered"
            assert actual["actual"]["import_kwh"] == pytest.approx(metered.sum() * 1.0)
        else:  # a battery without readings: what the load was with it idle is unknown
            assert actual["compared_steps"] == 0, site_id
            assert all(s["baseline_import_kw"] is None for s in actual["steps"])
        page = await client.get(f"/ui/plans/{record.id}")
        assert page.status_code == 200, (site_id, page.text[:500])
        assert 'id="actual"' in page.text


def _shared_unread(site: SiteFile, level: str, site_id: str, world: World) -> bool:
    """A park of the plan whose shared assets have meters the world wrote no readings for."""
    if level == "building":
        return False
    parks = site.city.parks if level == "city" else [p for p in site.city.parks if p.id == site_id]
    return any(
        m.asset in {a.id for a in park.assets} and f"{park.id}/{m.id}" not in world.series
        for park in parks
        for m in park.meters
        if m.carrier != "none" or m.quantity == "soc_pct"
    )


def _under(site: object, level: str, site_id: str, building: str) -> bool:
    from energyhub.sites import SiteFile

    assert isinstance(site, SiteFile)
    if level == "city":
        return True
    if level == "building":
        return building == site_id
    park = site.find_park(site_id)
    return park is not None and building in {b.id for b in park.buildings}


BARE = """
version: 1
timezone: Asia/Shanghai
city:
  id: town
  name: A town
  carbon: {grid_kg_per_kwh: 0.5, gas_kg_per_kwh: 0.2, heat_kg_per_kwh: 0.4, price_cny_per_t: 60}
  parks:
    - id: bare
      name: A park with nothing to steer
      grid: {import_max_kw: 2000, demand_charge_cny_per_kw: 40}
      buildings:
        - id: shed
          name: A shed
          class: office-A
          floor_area_m2: 500
          meters:
            - {id: main, carrier: electricity, quantity: power_kw}
"""


@pytest.fixture
async def bare(pg_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An API over a site without a single asset, with a day of readings of its main meter."""
    site_file = tmp_path / "bare.yaml"
    site_file.write_text(BARE)
    async with connect(pg_url) as conn:
        await migrate(conn)
        await sync_site(conn, load_site(site_file))
        cur = await conn.execute("SELECT id FROM meters WHERE name = 'main'")
        row = await cur.fetchone()
        assert row is not None
        backend = await installed_backend(conn)
        _, token = await create_key(conn, "admin", "town", "admin@town")
    minutes = pd.date_range("2026-11-20T00:00Z", periods=24 * 60, freq="1min")
    values = 400.0 + 100.0 * (minutes.hour.to_numpy() >= 12)
    batch = ReadingBatch.from_columns(
        minutes.tz_convert(None).values, np.full(len(minutes), int(row[0])), values
    )
    async with open_pool(pg_url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(batch)
    async with connect(pg_url) as conn:
        await refresh_rollups(conn, backend)
    app: FastAPI = create_app(settings_for(pg_url, site_file=site_file))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=headers
        ) as client:
            yield client, pg_url


async def test_a_site_without_assets(bare: tuple[httpx.AsyncClient, str], tmp_path: Path) -> None:
    client, url = bare
    site = load_site(tmp_path / "bare.yaml")
    index = pd.date_range("2026-11-20 18:00", periods=4, freq="1h", tz="Asia/Shanghai", name="ts")
    inputs = pd.DataFrame({"shed:electricity_kw": 450.0}, index=index)  # 10:00–14:00 UTC
    for level, site_id in (("building", "shed"), ("park", "bare"), ("city", "town")):
        async with connect(url) as conn:
            record = await store_plan(conn, plan(site, inputs, level=level, site_id=site_id))
        answer = await client.get(f"/plans/{record.id}/actual")
        assert answer.status_code == 200, answer.text
        actual = answer.json()
        assert [s["actual_import_kw"] for s in actual["steps"]] == pytest.approx(
            [400.0, 400.0, 500.0, 500.0]
        )
        assert all(s["soc"] == [] for s in actual["steps"])
        assert [s["baseline_import_kw"] for s in actual["steps"]] == pytest.approx(
            [400.0, 400.0, 500.0, 500.0]
        )  # nothing to shift: the baseline is what was metered
        assert actual["savings_cny"] == pytest.approx(0.0, abs=1e-9)
        assert actual["actual"]["demand_cny"] == pytest.approx(40 * 500.0)
        page = await client.get(f"/ui/plans/{record.id}")
        assert page.status_code == 200, page.text[:500]
