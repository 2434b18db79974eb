"""Bought district cooling is Scope 2 at its declared factor; bought heat and cooling have a
price in the cost; a cooling purchase without a factor is refused."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from energyhub.api.ui.render import page
from energyhub.carbon.accounting import carbon_report
from energyhub.carbon.disclose_files import emissions_csv
from energyhub.carbon.report_html import render_html
from energyhub.errors import SiteFileError
from energyhub.sites import parse_site
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import connect, installed_backend, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter

ZONE = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 11, 20, tzinfo=ZONE)


def _site(carbon: dict[str, Any]) -> dict[str, Any]:
    building = {
        "id": "b1",
        "class": "office-A",
        "floor_area_m2": 1000,
        "carbon": carbon,
        "meters": [
            {"id": "heat", "carrier": "heat", "quantity": "energy_kwh"},
            {"id": "cooling", "carrier": "cooling", "quantity": "energy_kwh"},
        ],
    }
    park = {"id": "p", "grid": {"import_max_kw": 100}, "buildings": [building]}
    return {"version": 1, "timezone": "Asia/Shanghai", "city": {"id": "c", "parks": [park]}}


BOUGHT = {
    "cooling_purchased": True,
    "cooling_kg_per_kwh": 0.1,
    "heat_price_cny_per_kwh": 0.3,
    "cooling_price_cny_per_kwh": 0.2,
}


async def test_bought_cooling_is_scope_2_and_bought_energy_has_a_cost(store_url: str) -> None:
    site = parse_site(_site(BOUGHT))
    async with connect(store_url) as conn:
        await migrate(conn)
        await sync_site(conn, site)
        cur = await conn.execute("SELECT name, id FROM meters")
        ids = dict(await cur.fetchall())
        backend = await installed_backend(conn)
    steps = 24 * 4 + 1  # every 15 min from midnight to midnight, both ends
    ts = np.array(
        [int((DAY + timedelta(minutes=15 * i)).timestamp() * 1_000_000) for i in range(steps)],
        dtype="datetime64[us]",
    )
    heat = 1000.0 + 5.0 * np.arange(steps)
    cooling = 50.0 + 10.0 * np.arange(steps)
    batch = ReadingBatch.concat(
        [
            ReadingBatch.from_columns(ts, np.full(steps, ids["heat"]), heat),
            ReadingBatch.from_columns(ts, np.full(steps, ids["cooling"]), cooling),
        ]
    )
    async with open_pool(store_url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(batch)
    async with connect(store_url) as conn:
        await refresh_rollups(conn, backend)
        report = await carbon_report(conn, backend, "b1", DAY, DAY + timedelta(days=1))
    heat_kwh, cooling_kwh = 5.0 * (steps - 2), 10.0 * (steps - 2)  # the last step is tomorrow's
    assert (report.energy_kwh.heat, report.energy_kwh.cooling) == (heat_kwh, cooling_kwh)
    assert report.scope2_cooling_kg == pytest.approx(cooling_kwh * 0.1)
    assert report.scope2_heat_kg == pytest.approx(heat_kwh * 0.396)
    assert report.total_kg == pytest.approx(cooling_kwh * 0.1 + heat_kwh * 0.396)
    assert report.cost_cny.heat == pytest.approx(heat_kwh * 0.3)
    assert report.cost_cny.cooling == pytest.approx(cooling_kwh * 0.2)
    assert report.cost_cny.total == pytest.approx(heat_kwh * 0.3 + cooling_kwh * 0.2)
    assert report.factors.cooling_kg_per_kwh == 0.1
    assert not any("cooling" in note for note in report.notes), report.notes  # it is bought
    assert report.factors.sources["cooling_kg_per_kwh"] == "site file: b1 carbon.cooling_kg_per_kwh"


def test_bought_cooling_needs_its_factor() -> None:
    with pytest.raises(SiteFileError, match=r"carbon.cooling_purchased: true needs cooling_kg"):
        parse_site(_site({"cooling_purchased": True}))


async def test_the_disclosure_and_the_ui_list_bought_cooling(store_url: str) -> None:
    """emissions.csv's location-based rows and the /ui page's Scope 2 rows add up to their
    totals with bought cooling among them (each row: activity × factor = kg)."""
    site = parse_site(_site(BOUGHT))
    async with connect(store_url) as conn:
        await migrate(conn)
        await sync_site(conn, site)
        cur = await conn.execute("SELECT name, id FROM meters")
        ids = dict(await cur.fetchall())
        backend = await installed_backend(conn)
    steps = 4 * 4 + 1
    ts = np.array(
        [int((DAY + timedelta(minutes=15 * i)).timestamp() * 1_000_000) for i in range(steps)],
        dtype="datetime64[us]",
    )
    batch = ReadingBatch.concat(
        [
            ReadingBatch.from_columns(ts, np.full(steps, ids["heat"]), 5.0 * np.arange(steps)),
            ReadingBatch.from_columns(ts, np.full(steps, ids["cooling"]), 10.0 * np.arange(steps)),
        ]
    )
    async with open_pool(store_url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(batch)
    async with connect(store_url) as conn:
        await refresh_rollups(conn, backend)
        report = await carbon_report(conn, backend, "b1", DAY, DAY + timedelta(days=1))
    assert report.scope2_cooling_kg > 0 and report.scope2_market is not None
    rows = list(csv.DictReader(io.StringIO(emissions_csv(report).decode())))
    scope2 = [r for r in rows if r["scope"] == "2" and r["method"] in ("location", "both")]
    assert sum(float(r["kg_co2"]) for r in scope2) == pytest.approx(report.scope2_kg, abs=1e-5)
    for row in scope2:
        if row["activity_kwh"] and row["kg_per_kwh"]:
            kg = float(row["activity_kwh"]) * float(row["kg_per_kwh"])
            assert kg == pytest.approx(float(row["kg_co2"]), abs=1e-4), row
    body = page(
        "carbon.html", site_id="b1", period="2026-11-20", report=report,
        market=report.scope2_market, missing=None, held=[], account=None, entries=[], zone=ZONE,
    ).body  # fmt: skip
    table = bytes(body).decode().split('id="scope2"')[1].split("</table>")[0]
    cells = re.findall(r"<td>Scope 2 [^<]*</td><td class=\"num\">([^<]*)<", table)
    assert len(cells) == 3  # electricity, heat, cooling
    shown = sum(float(c.replace(",", "")) for c in cells)
    assert shown == pytest.approx(report.scope2_kg, abs=2)
    html = render_html(report)
    assert f"<td>cooling, kg CO₂</td><td>{report.scope2_cooling_kg:,.0f}</td>" in html
