"""Green certificates over the API: scoped like the rest, refusals name the field, and the
carbon report shows market-based Scope 2 beside location-based."""

from __future__ import annotations

import re

import httpx
import psycopg
from fastapi import FastAPI

from energyhub.api.ui.render import number

from .conftest import World, as_key

DAY = "2026-11-20"
BLOCK = {
    "project": "Jiuquan solar 2",
    "technology": "solar",
    "location": "Gansu",
    "vintage": 2026,
    "serial_first": 7000,
    "serial_last": 7001,
    "reason": "PO 2026-118",
}


async def rows(world: World) -> tuple[int, int]:
    with psycopg.connect(world.url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM green_instruments), "
            "(SELECT count(*) FROM green_retirements)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def test_retired_certificates_lower_market_based_scope2(
    client: httpx.AsyncClient, world: World
) -> None:
    before = (await client.get("/carbon/b01", params={"period": DAY})).json()
    assert before["scope2_market"]["market_kg"] > 0
    assert before["scope2_market"]["location_kg"] == before["scope2_kg"]
    created = await client.post("/carbon/b01/certificates", json=BLOCK)
    assert created.status_code == 201, created.text
    instrument = created.json()["id"]
    retired = await client.post(
        "/carbon/b01/retirements",
        json={"instrument_id": instrument, "period": DAY, "reason": "Nov consumption"},
    )
    assert retired.status_code == 201, retired.text
    after = (await client.get("/carbon/b01", params={"period": DAY})).json()
    market = after["scope2_market"]
    bought = market["electricity_kwh"]
    assert market["certificate_kwh"] == min(2000.0, bought)
    residual = bought - market["certificate_kwh"]
    assert (
        abs(market["market_electricity_kg"] - residual * market["residual_mix_kg_per_kwh"]) < 1e-6
    )
    assert after["scope2_kg"] == before["scope2_kg"]  # location-based does not move
    listed = (await client.get("/carbon/b01/instruments")).json()
    assert [(i["serials"], i["mwh"], i["retired_mwh"]) for i in listed] == [("7000-7001", 2, 2)]
    assert listed[0]["recorded_by"].startswith("key:")
    # Retired once: the same serials are refused, naming the field, and nothing is written.
    again = await client.post(
        "/carbon/b01/retirements",
        json={"instrument_id": instrument, "period": DAY, "reason": "twice"},
    )
    assert again.status_code == 422
    assert again.json()["errors"][0]["field"] == "serial_first"
    assert "already retired" in again.json()["detail"]
    assert await rows(world) == (1, 1)


async def test_a_key_sees_and_retires_only_within_its_scope(
    client: httpx.AsyncClient, world: World
) -> None:
    created = await client.post("/carbon/b02/certificates", json=BLOCK)
    assert created.status_code == 201
    other = created.json()["id"]
    manager = as_key(world, "manager", "b01")
    assert (await client.get("/carbon/b02/instruments", headers=manager)).status_code == 404
    stolen = await client.post(
        "/carbon/b01/retirements",
        json={"instrument_id": other, "period": DAY, "reason": "not mine"},
        headers=manager,
    )
    assert stolen.status_code == 404
    viewer = as_key(world, "viewer", "b01")
    refused = await client.post("/carbon/b01/certificates", json=BLOCK, headers=viewer)
    assert refused.status_code == 403
    tenant = as_key(world, "viewer", "acme-bio")
    assert (await client.get("/carbon/b01/instruments", headers=tenant)).status_code == 404
    assert (await client.get("/carbon/acme-bio/instruments", headers=tenant)).json() == []
    assert await rows(world) == (1, 0)


async def test_bad_blocks_are_422_naming_the_field(client: httpx.AsyncClient, world: World) -> None:
    assert (await client.post("/carbon/b01/certificates", json=BLOCK)).status_code == 201
    overlap = await client.post(
        "/carbon/b02/certificates", json=BLOCK | {"serial_first": 6990, "serial_last": 7000}
    )
    assert overlap.status_code == 422
    assert overlap.json()["errors"][0]["field"] == "serial_first"
    backwards = await client.post(
        "/carbon/b01/certificates", json=BLOCK | {"serial_first": 9, "serial_last": 1}
    )
    assert backwards.status_code == 422 and "serial_last" in backwards.text
    # a check across two fields named the field 'body': it names the field its message starts with
    assert backwards.json()["errors"][0]["field"] == "serial_last", backwards.text
    huge = await client.post(
        "/carbon/b01/certificates", json=BLOCK | {"serial_first": 1, "serial_last": 20_000_000}
    )
    assert huge.status_code == 422 and huge.json()["errors"][0] == {
        "location": "body",
        "field": "serial_last",
        "message": "serial_last (20000000): the block from serial_first (1) holds 20,000,000 "
        "certificates, at most 10,000,000",
    }
    late = await client.post(
        "/carbon/b01/contracts",
        json={k: v for k, v in BLOCK.items() if not k.startswith("serial")}
        | {"mwh": 5, "supplier_kg_per_kwh": 0.1}
        | {"delivery_start": "2026-05-01", "delivery_end": "2026-04-01"},
    )
    assert late.status_code == 422 and late.json()["errors"][0]["field"] == "delivery_end"
    no_use = await client.post(
        "/carbon/b01/retirements", json={"instrument_id": 1, "period": "2020-01", "reason": "x"}
    )
    assert no_use.status_code == 422
    assert no_use.json()["errors"][0]["field"] == "period"
    assert await rows(world) == (1, 0)


async def test_the_carbon_page_shows_both_methods_side_by_side(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    instrument = (await client.post("/carbon/b01/certificates", json=BLOCK)).json()["id"]
    retired = await client.post(
        "/carbon/b01/retirements",
        json={"instrument_id": instrument, "period": DAY, "reason": "Nov"},
    )
    assert retired.status_code == 201
    report = (await client.get("/carbon/b01", params={"period": DAY})).json()["scope2_market"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ui.test") as browser:
        login = await browser.post(
            "/ui/login", data={"key": world.token("viewer", "b01"), "next": "/ui"}
        )
        assert login.status_code == 303
        page = await browser.get("/ui/sites/b01/carbon", params={"period": DAY})
        assert page.status_code == 200, page.text
        assert "<title>Carbon · b01 · energyhub</title>" in page.text  # the title is a title
        shown = dict(re.findall(r'data-method="(\w+)">([^<]*)<', page.text))
        assert shown == {
            "location": number(report["location_kg"], 0),
            "market": number(report["market_kg"], 0),
        }
        assert "7000-7001" in page.text and "Jiuquan solar 2" in page.text
        parts = dict(re.findall(r'data-line="([^"]+)">([^<]*)<', page.text))
        assert parts == {line["site_id"]: number(line["market_kg"], 0) for line in report["lines"]}
        assert len(parts) > 1
        empty = await browser.get("/ui/sites/b01/carbon", params={"period": "2020-01"})
        assert empty.status_code == 200 and "no readings for site" in empty.text
        bad = await browser.get("/ui/sites/b01/carbon", params={"period": "soon"})
        assert bad.status_code == 422
        outside = await browser.get("/ui/sites/b02/carbon", params={"period": DAY})
        assert outside.status_code == 404
        site = await browser.get("/ui/sites/b01", params={"end": "2026-11-21T00:00:00+08:00"})
        assert 'href="/ui/sites/b01/carbon"' in site.text
