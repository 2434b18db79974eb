"""Sites: the tree within a key's scope, one site, its meters and assets."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import World, as_key


@pytest.fixture
def world(shared_world: World) -> World:
    """These tests only read: one database for the module."""
    return shared_world


def _ids(node: dict) -> list[str]:
    return [node["id"], *(i for child in node["children"] for i in _ids(child))]


async def test_tree_is_the_keys_subtree(client: httpx.AsyncClient, world: World) -> None:
    city = (await client.get("/sites")).json()
    assert city["id"] == "shanghai" and city["kind"] == "city"
    assert {"expo", "lingang", "b01", "acme-bio", "l05"} <= set(_ids(city))
    b01 = (await client.get("/sites", headers=as_key(world, "viewer", "b01"))).json()
    assert _ids(b01) == ["b01", "acme-bio", "zj-semi"]


async def test_one_site_with_its_children_and_settings(client: httpx.AsyncClient) -> None:
    response = await client.get("/sites/b01")
    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "building" and body["parent_id"] == "expo"
    assert sorted(body["children"]) == ["acme-bio", "zj-semi"]
    assert body["attributes"]["floor_area_m2"] == 60000
    assert "assets" not in body["attributes"]
    park = (await client.get("/sites/expo")).json()
    assert park["attributes"]["grid"]["import_max_kw"] == 20000
    assert park["attributes"]["plan_approval"] == "operator"


async def test_meters_of_a_building_and_of_an_enterprise(
    client: httpx.AsyncClient, world: World
) -> None:
    b01 = (await client.get("/sites/b01/meters")).json()
    assert {m["name"] for m in b01} >= {"main", "heat", "f3", "pv", "bess-soc"}
    f3 = next(m for m in b01 if m["name"] == "f3")
    assert f3["parent_meter_id"] == world.meters["b01/main"]
    assert f3["quantity"] == "energy_kwh"
    tenant = (await client.get("/sites/acme-bio/meters")).json()
    assert sorted(m["id"] for m in tenant) == sorted(
        [world.meters["b01/f3"], world.meters["b04/lab2"]]
    )


async def test_assets_keep_their_unit_keys(client: httpx.AsyncClient) -> None:
    assets = (await client.get("/sites/b01/assets")).json()
    bess = next(a for a in assets if a["id"] == "b01-bess")
    assert bess["type"] == "battery" and bess["energy_kwh"] == 1000 and bess["power_kw"] == 500
    assert (await client.get("/sites/acme-bio/assets")).json() == []


async def test_unknown_and_malformed_ids(client: httpx.AsyncClient) -> None:
    missing = await client.get("/sites/b99")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no site 'b99'"
    bad = await client.get("/sites/b%2001")
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "site_id"
