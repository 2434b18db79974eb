"""The allowance ledger over the API: a tenant's key sees and writes its own account only,
refusals are 422 naming the field, and the position is the one the CLI prints."""

from __future__ import annotations

import re
from datetime import date

import httpx
import psycopg
from fastapi import FastAPI

from energyhub.api.ui.render import number
from energyhub.carbon.position import position
from energyhub.store.db import connect, installed_backend

from .conftest import World, as_key

ALLOCATION = {
    "compliance_year": 2026,
    "kind": "allocation",
    "instrument": "allowance",
    "entry_date": "2026-03-31",
    "volume_t": 500,
    "reason": "allocation notice 2026-17",
}
SALE = ALLOCATION | {
    "kind": "sale",
    "entry_date": "2026-11-02",
    "volume_t": 50,
    "price_cny_per_t": 92.5,
    "counterparty": "Shanghai Environment and Energy Exchange",
    "reason": "surplus sold",
}


def ledger_rows(world: World) -> int:
    with psycopg.connect(world.url) as conn:
        row = conn.execute("SELECT count(*) FROM carbon_ledger").fetchone()
    assert row is not None
    return int(row[0])


async def test_a_tenant_keeps_its_own_ledger(client: httpx.AsyncClient, world: World) -> None:
    tenant = as_key(world, "manager", "acme-bio")
    created = await client.post("/carbon/acme-bio/ledger", json=ALLOCATION, headers=tenant)
    assert created.status_code == 201, created.text
    sold = await client.post("/carbon/acme-bio/ledger", json=SALE, headers=tenant)
    assert sold.status_code == 201, sold.text
    listed = (await client.get("/carbon/acme-bio/ledger", headers=tenant)).json()
    assert [(e["kind"], e["volume_t"]) for e in listed] == [("allocation", 500), ("sale", 50)]
    assert listed[1]["recorded_by"].startswith("key:") and listed[1]["reason"] == "surplus sold"
    # Another tenant's ledger, and the building's, are out of its scope.
    assert (await client.get("/carbon/zj-semi/ledger", headers=tenant)).status_code == 404
    other = await client.post("/carbon/zj-semi/ledger", json=ALLOCATION, headers=tenant)
    assert other.status_code == 404
    assert (await client.get("/carbon/b01/position?year=2026", headers=tenant)).status_code == 404
    # The city's key sees it; a viewer cannot write.
    assert len((await client.get("/carbon/acme-bio/ledger")).json()) == 2
    viewer = as_key(world, "viewer", "acme-bio")
    assert (
        await client.post("/carbon/acme-bio/ledger", json=SALE, headers=viewer)
    ).status_code == 403
    # A correction is a reversal, recorded with its reason.
    reversed_ = await client.post(
        f"/carbon/acme-bio/ledger/{listed[1]['id']}/reversal",
        json={"reason": "trade cancelled by the exchange"},
        headers=tenant,
    )
    assert reversed_.status_code == 201, reversed_.text
    again = await client.post(
        f"/carbon/acme-bio/ledger/{listed[1]['id']}/reversal", json={"reason": "x"}, headers=tenant
    )
    assert again.status_code == 422 and again.json()["errors"][0]["field"] == "entry_id"
    assert ledger_rows(world) == 3


async def test_refusals_are_422_naming_the_field(client: httpx.AsyncClient, world: World) -> None:
    assert (await client.post("/carbon/acme-bio/ledger", json=ALLOCATION)).status_code == 201
    cases = [
        (SALE | {"volume_t": 501}, "volume_t", "sale of 501 t, 500 t allowance held"),
        (SALE | {"price_cny_per_t": 0.0925}, "price_cny_per_t", "a price per kg?"),
        (SALE | {"counterparty": None}, "body", "counterparty is needed for a sale"),
        (ALLOCATION | {"instrument": "ccer"}, "body", "instrument of an allocation"),
        (ALLOCATION | {"volume_t": -5}, "volume_t", "greater than 0"),
    ]
    for body, field, message in cases:
        refused = await client.post("/carbon/acme-bio/ledger", json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert field in {e["field"] for e in refused.json()["errors"]} | {"body"}, refused.text
        assert message in refused.text, refused.text
    park = await client.post("/carbon/expo/ledger", json=ALLOCATION)
    assert park.status_code == 422 and park.json()["errors"][0]["field"] == "site_id"
    assert park.json()["errors"][0]["location"] == "path", park.text
    position = await client.get("/carbon/expo/position", params={"year": 2026})
    assert position.status_code == 422, position.text
    assert position.json()["errors"][0]["field"] == "site_id", position.text
    assert ledger_rows(world) == 1


async def test_position_is_the_clis(client: httpx.AsyncClient, world: World) -> None:
    assert (await client.post("/carbon/acme-bio/ledger", json=ALLOCATION)).status_code == 201
    answer = await client.get(
        "/carbon/acme-bio/position", params={"year": 2026, "as_of": "2026-11-20"}
    )
    assert answer.status_code == 200, answer.text
    async with connect(world.url) as conn:
        direct = await position(
            conn, await installed_backend(conn), "acme-bio", 2026, date(2026, 11, 20)
        )
    assert answer.json() == direct.model_dump(mode="json")
    assert answer.json()["emissions_basis"] == "projected"
    assert answer.json()["allowances_held_t"] == 500


async def test_the_carbon_page_shows_a_tenants_position_and_ledger(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    assert (await client.post("/carbon/acme-bio/ledger", json=ALLOCATION)).status_code == 201
    expected = (await client.get("/carbon/acme-bio/position", params={"year": 2026})).json()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ui.test") as browser:
        login = await browser.post(
            "/ui/login", data={"key": world.token("viewer", "acme-bio"), "next": "/ui"}
        )
        assert login.status_code == 303
        page = await browser.get("/ui/sites/acme-bio/carbon", params={"period": "2026-11"})
        assert page.status_code == 200, page.text
        shown = re.search(r'data-field="position_t">([^<]*)<', page.text)
        assert shown is not None and shown.group(1) == number(expected["position_t"], 1)
        assert "allocation notice 2026-17" in page.text
        park = await browser.get("/ui/sites/b01/carbon", params={"period": "2026-11"})
        assert park.status_code == 404  # the building is outside the tenant's scope
