"""GET /carbon/{site}: the carbon report of the CLI, within the key's scope."""

from __future__ import annotations

import json

import httpx

from energyhub.carbon.accounting import carbon_report
from energyhub.carbon.periods import parse_period
from energyhub.store.db import connect, installed_backend

from .conftest import World, as_key

DAY = "2026-11-20"


async def test_same_numbers_as_the_report(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get("/carbon/b01", params={"period": DAY})
    assert response.status_code == 200, response.text
    body = response.json()
    async with connect(world.url) as conn:
        start, end = parse_period(DAY, "Asia/Shanghai")
        direct = await carbon_report(conn, await installed_backend(conn), "b01", start, end)
    assert body == direct.model_dump(mode="json")
    assert body["scope2_kg"] > 0


async def test_out_of_scope_is_404_and_bad_input_422(
    client: httpx.AsyncClient, world: World
) -> None:
    manager = as_key(world, "manager", "b01")
    assert (
        await client.get("/carbon/b01", params={"period": DAY}, headers=manager)
    ).status_code == 200
    outside = await client.get("/carbon/b02", params={"period": DAY}, headers=manager)
    assert outside.status_code == 404
    bad = await client.get("/carbon/b01", params={"period": "last week"})
    assert bad.status_code == 422 and "period" in bad.text
    empty = await client.get("/carbon/b01", params={"period": "2020-01"})
    assert empty.status_code == 422 and "site_id" in empty.text


async def test_stored_factors_this_version_refuses_are_a_409_naming_them(
    client: httpx.AsyncClient, world: World
) -> None:
    """A factor an older version stored (581 kg/kWh, a grid factor in g/kWh) was a traceback and
    a 500 for every carbon report once the site-file rules refused it."""
    async with connect(world.url) as conn:
        await conn.execute(
            "UPDATE sites SET attributes = jsonb_set(attributes, '{carbon}', %s::jsonb) "
            "WHERE id = 'b01'",
            (json.dumps({"grid_kg_per_kwh": 581}),),
        )
        await conn.commit()
    response = await client.get("/carbon/b01", params={"period": "2026-11"})
    assert response.status_code == 409, response.text
    assert response.json()["detail"] == (
        "site 'b01': its stored grid_kg_per_kwh (must be at most 2 kg of CO₂ per kWh: a factor "
        "in g/kWh? divide by 1000, got 581) was taken by an older version; load its site file "
        "again (`energyhub sites load`), which names what to change"
    )
