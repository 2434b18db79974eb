"""The cost–CO₂ frontier over HTTP: POST /plans with "frontier": N, the points in the plan, the
page's chart, and an operator's pick that becomes the plan."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.api.conftest import World, as_key
from tests.api.test_plans import body, finished


async def test_a_picked_point_becomes_the_plan(
    client: httpx.AsyncClient, app: FastAPI, world: World
) -> None:
    request = body(steps=6) | {"frontier": 3}
    created = (await client.post("/plans", json=request)).json()
    done = await finished(client, app, created["id"])
    assert done["status"] == "draft", done
    points = done["frontier"]
    assert [p["index"] for p in points] == [0, 1, 2] and done["frontier_point"] == 0
    assert points[0]["co2_kg"] == pytest.approx(done["co2_kg"])
    assert points[0]["co2_kg"] > points[2]["co2_kg"]  # b01 can trade cost for CO₂
    assert points[2]["cost_cny"] >= points[0]["cost_cny"]
    page = (await client.get(f"/ui/plans/{created['id']}")).text
    assert 'data-chart="frontier"' in page and page.count('class="pick"') == 2

    viewer = await client.post(
        f"/plans/{created['id']}/frontier/2", headers=as_key(world, "viewer", "b01")
    )
    assert viewer.status_code == 403
    beyond = await client.post(f"/plans/{created['id']}/frontier/7")
    assert beyond.status_code == 422 and "point must be 0 to 2, got 7" in beyond.text
    picked = await client.post(f"/plans/{created['id']}/frontier/2")
    assert picked.status_code == 200, picked.text
    new = picked.json()
    assert new["frontier_point"] == 2 and new["status"] == "draft"
    assert new["co2_kg"] == pytest.approx(points[2]["co2_kg"], rel=1e-4)
    old = (await client.get(f"/plans/{created['id']}")).json()
    assert old["status"] == "rejected"
    assert old["rejected_reason"] == f"replaced by frontier point 2: plan {new['id']}"
    again = await client.post(f"/plans/{created['id']}/frontier/1")
    assert again.status_code == 409
    back = await client.post(f"/plans/{new['id']}/frontier/0")
    assert back.status_code == 200
    assert back.json()["co2_kg"] == pytest.approx(points[0]["co2_kg"], rel=1e-4)


async def test_a_plan_without_a_frontier_has_no_point_to_pick(
    client: httpx.AsyncClient, world: World
) -> None:
    answer = await client.post(f"/plans/{world.plans['b01']}/frontier/1")
    assert answer.status_code == 422 and "has no frontier" in answer.text


async def test_a_frontier_of_one_point_is_bad_input(client: httpx.AsyncClient) -> None:
    answer = await client.post("/plans", json=body() | {"frontier": 1})
    assert answer.status_code == 422 and "frontier" in answer.text
