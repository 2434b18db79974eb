import copy
from typing import Any

import pytest
from psycopg import AsyncConnection

from energyhub.sites import SiteFile, parse_site
from energyhub.store.sync import sync_site


def edited(site: SiteFile) -> dict[str, Any]:
    return copy.deepcopy(site.model_dump(mode="json", by_alias=True, exclude_none=True))


async def meter_rows(conn: AsyncConnection, site_id: str) -> dict[str, tuple[int, bool]]:
    cur = await conn.execute(
        "SELECT name, id, active FROM meters WHERE site_id = %s ORDER BY id", (site_id,)
    )
    return {name: (meter_id, active) for name, meter_id, active in await cur.fetchall()}


async def test_first_load_stores_the_tree(conn: AsyncConnection, example_site: SiteFile) -> None:
    report = await sync_site(conn, example_site)
    meters = sum(len(owner.meters) for _, owner in example_site.metered_sites())
    assert len(report.added) == meters
    cur = await conn.execute("SELECT kind, count(*) FROM sites GROUP BY kind ORDER BY kind")
    assert await cur.fetchall() == [("building", 12), ("city", 1), ("enterprise", 6), ("park", 2)]
    cur = await conn.execute("SELECT parent_id, attributes->>'class' FROM sites WHERE id = 'b04'")
    assert await cur.fetchone() == ("expo", "lab")
    cur = await conn.execute(
        "SELECT m.name, p.name FROM meters m JOIN meters p ON p.id = m.parent_meter_id "
        "WHERE m.site_id = 'b01' ORDER BY 1"
    )
    assert await cur.fetchall() == [("f3", "main"), ("f7", "main")]
    cur = await conn.execute(
        "SELECT m.site_id || '/' || m.name FROM enterprise_meters e JOIN meters m "
        "ON m.id = e.meter_id WHERE e.enterprise_id = 'acme-bio' ORDER BY 1"
    )
    assert await cur.fetchall() == [("b01/f3",), ("b04/lab2",)]


async def test_reload_changes_nothing(conn: AsyncConnection, example_site: SiteFile) -> None:
    await sync_site(conn, example_site)
    before = await meter_rows(conn, "b01")
    again = await sync_site(conn, example_site)
    assert not again.changed
    assert again.unchanged == sum(len(owner.meters) for _, owner in example_site.metered_sites())
    assert await meter_rows(conn, "b01") == before


async def test_removed_meter_is_retired_and_its_readings_kept(
    conn: AsyncConnection, example_site: SiteFile
) -> None:
    await sync_site(conn, example_site)
    f7 = (await meter_rows(conn, "b01"))["f7"][0]
    await conn.execute("INSERT INTO readings VALUES ('2026-11-26 00:00+00', %s, 1.0)", (f7,))
    data = edited(example_site)
    building = data["city"]["parks"][0]["buildings"][0]
    building["meters"] = [m for m in building["meters"] if m["id"] != "f7"]
    building["enterprises"] = [e for e in building["enterprises"] if e["id"] != "zj-semi"]
    report = await sync_site(conn, parse_site(data))
    assert report.retired == ["b01/f7"]
    assert report.sites_deactivated == ["zj-semi"]
    assert (await meter_rows(conn, "b01"))["f7"] == (f7, False)
    cur = await conn.execute("SELECT count(*) FROM readings WHERE meter_id = %s", (f7,))
    assert (await cur.fetchone())[0] == 1
    back = await sync_site(conn, example_site)
    assert back.reactivated == ["b01/f7"]
    assert (await meter_rows(conn, "b01"))["f7"] == (f7, True)


async def test_rename_keeps_the_meter_row(conn: AsyncConnection, example_site: SiteFile) -> None:
    await sync_site(conn, example_site)
    f3 = (await meter_rows(conn, "b01"))["f3"][0]
    data = edited(example_site)
    building = data["city"]["parks"][0]["buildings"][0]
    for meter in building["meters"]:
        if meter["id"] == "f3":
            meter.update(id="floor-3", renamed_from="f3")
    building["enterprises"][0]["meters"] = ["floor-3", "b04/lab2"]
    report = await sync_site(conn, parse_site(data))
    assert report.renamed == ["b01/f3 → floor-3"]
    assert report.added == [] and report.retired == []
    rows = await meter_rows(conn, "b01")
    assert rows["floor-3"] == (f3, True)
    assert "f3" not in rows
    again = await sync_site(conn, parse_site(data))
    assert not again.changed


async def test_changed_meter_is_updated(conn: AsyncConnection, example_site: SiteFile) -> None:
    await sync_site(conn, example_site)
    data = edited(example_site)
    data["city"]["parks"][0]["buildings"][0]["meters"][1]["rollover_kwh"] = 99999.9
    report = await sync_site(conn, parse_site(data))
    assert report.updated == ["b01/heat"]
    cur = await conn.execute(
        "SELECT rollover_kwh FROM meters WHERE site_id = 'b01' AND name = 'heat'"
    )
    assert (await cur.fetchone())[0] == pytest.approx(99999.9)
