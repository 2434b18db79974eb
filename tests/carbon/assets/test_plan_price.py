"""A building's plan prices carbon from its allowance position: the market price with a
shortfall, the last sale price (or nothing) with a surplus, the site file's price otherwise."""

from __future__ import annotations

import copy
from datetime import date, datetime
from zoneinfo import ZoneInfo

from energyhub.carbon.allowances import EntryIn, add_entry
from energyhub.carbon.plan_price import (
    allowance_price,
    plan_carbon_price,
    price_series_of,
    with_position_price,
)
from energyhub.optimize.scope import resolve_scope
from energyhub.sites import SiteFile, parse_site
from energyhub.store.allowances import store_prices
from energyhub.store.db import connect, installed_backend
from energyhub.store.sync import sync_site
from tests.carbon.assets.conftest import assets_site

DAY = date(2026, 10, 5)
START = datetime(2026, 10, 5, 12, tzinfo=ZoneInfo("Asia/Shanghai"))
SITE_PRICE = 100.0  # the test city's price_cny_per_t


def entry(kind: str, volume: float, **extra: object) -> EntryIn:
    values: dict[str, object] = {
        "compliance_year": 2026,
        "kind": kind,
        "instrument": "allowance",
        "entry_date": "2026-09-01",
        "volume_t": volume,
        "reason": "test",
    }
    return EntryIn.model_validate(values | extra)


async def test_a_shortfall_prices_carbon_at_the_market(
    assets_url: str, assets_site_file: SiteFile
) -> None:
    async with connect(assets_url) as conn:
        backend = await installed_backend(conn)
        await add_entry(conn, "b1", entry("allocation", 1), "alice")
        await store_prices(conn, "SHEA", [date(2026, 9, 30), date(2026, 10, 6)], [88.0, 70.0])
        decision = await plan_carbon_price(conn, backend, "b1", DAY)
        site, notes = await with_position_price(
            conn, backend, assets_site_file, "building", "b1", START
        )
    assert decision is not None and decision.basis == "shortfall"
    assert decision.price_cny_per_t == 88.0  # the price on or before the day, not after
    assert decision.position_t is not None and decision.position_t < 0
    assert resolve_scope(site, "building", "b1").carbon.price_cny_per_t == 88.0
    assert assets_site_file.city.carbon.price_cny_per_t == SITE_PRICE  # the original is intact
    assert notes == [f"carbon price 88 CNY/t from the allowance position: {decision.reason}"]


async def test_a_surplus_prices_at_the_last_sale_or_zero(
    assets_url: str, assets_site_file: SiteFile
) -> None:
    async with connect(assets_url) as conn:
        backend = await installed_backend(conn)
        await add_entry(conn, "b1", entry("allocation", 100_000), "alice")
        sale = {"price_cny_per_t": 95.5, "counterparty": "SEEE"}
        await add_entry(conn, "b1", entry("sale", 10, **sale), "alice")
        await add_entry(
            conn,
            "b1",
            entry("sale", 10, entry_date="2026-08-01", price_cny_per_t=60.0, counterparty="X"),
            "alice",
        )
        selling = await plan_carbon_price(conn, backend, "b1", DAY)
        changed = copy.deepcopy(assets_site())
        changed["city"]["parks"][0]["buildings"][0]["carbon_scheme"]["surplus_price"] = "zero"
        await sync_site(conn, parse_site(changed))
        free = await plan_carbon_price(conn, backend, "b1", DAY)
    assert selling is not None and (selling.basis, selling.price_cny_per_t) == (
        "surplus-sale",
        95.5,
    )
    assert free is not None and (free.basis, free.price_cny_per_t) == ("surplus-zero", 0.0)


async def test_without_the_setting_or_a_price_the_site_file_stays(
    assets_url: str, assets_site_file: SiteFile
) -> None:
    async with connect(assets_url) as conn:
        backend = await installed_backend(conn)
        park = await with_position_price(conn, backend, assets_site_file, "park", "p1", START)
        other = await with_position_price(conn, backend, assets_site_file, "building", "b2", START)
        await add_entry(conn, "b1", entry("allocation", 1), "alice")
        site, notes = await with_position_price(
            conn, backend, assets_site_file, "building", "b1", START
        )
        tenant = await plan_carbon_price(conn, backend, "tenant-a", DAY)  # plan_price: site-file
    assert park == (assets_site_file, []) and other == (assets_site_file, [])
    assert site is assets_site_file
    assert len(notes) == 1 and notes[0].startswith("carbon price: shortfall of ")
    assert notes[0].endswith(" t but no market price")
    assert tenant is None


async def test_the_allowance_price_a_plan_is_weighed_against(
    assets_url: str, assets_site_file: SiteFile
) -> None:
    data = copy.deepcopy(assets_site())
    building = data["city"]["parks"][0]["buildings"][0]
    building["carbon_scheme"]["price_series"] = None
    via_tenant = parse_site(data)  # b1's own scheme names no series: its tenant's is the one
    building["enterprises"][1]["carbon_scheme"] = {"price_series": "CEA"}
    two = parse_site(data)
    assert price_series_of(assets_site_file, "b1") == "SHEA"  # the building's own
    assert price_series_of(via_tenant, "b1") == "SHEA"
    assert price_series_of(via_tenant, "p1") == "SHEA" and price_series_of(via_tenant, "p2") is None
    assert price_series_of(two, "b1") is None  # two series: neither is the building's price
    assert price_series_of(two, "tenant-b") == "CEA"
    async with connect(assets_url) as conn:
        before = await allowance_price(conn, assets_site_file, "b1", DAY)
        await store_prices(conn, "SHEA", [date(2026, 9, 30), date(2026, 10, 6)], [88.0, 70.0])
        found = await allowance_price(conn, assets_site_file, "b1", DAY)
        none = await allowance_price(conn, assets_site_file, "b2", DAY)
    assert before is None and none is None
    assert found is not None
    assert (found.series, found.day, found.price_cny_per_t) == ("SHEA", date(2026, 9, 30), 88.0)
