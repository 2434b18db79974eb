"""The scope matrix: each role × in / out of its site's subtree × every route.

Out of scope answers 404 like an unknown id (for every role); in scope, a role too low is 403.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from energyhub.api.keys import RANK, ROLES
from energyhub.plans.store import get_plan, store_plan
from energyhub.store.db import connect
from tests.api.conftest import World, as_key, solved
from tests.api.test_plans import body

SITE_ROUTES = ("/sites/{}", "/sites/{}/meters", "/sites/{}/assets", "/sites/{}/load")
METER_ROUTES = ("/meters/{}", "/meters/{}/latest", "/meters/{}/readings")
PLAN_READS = ("/plans/{}", "/plans/{}/schedule", "/plans/{}/actual")
OUTSIDE_SITES = ("b02", "expo", "shanghai")  # a sibling, the park total, the city


async def draft_b01(world: World) -> int:
    async with connect(world.url) as conn:
        return (await store_plan(conn, solved("building", "b01"))).id


async def calls(world: World, inside: bool) -> list[tuple[str, str, dict[str, Any] | None, str]]:
    """(method, path, json, action) for every route, aimed inside or outside a b01 key's scope."""
    sites = ["b01", "acme-bio"] if inside else list(OUTSIDE_SITES)
    # b04/lab2 is a sub-meter of acme-bio, an enterprise of b01: inside, though in b04
    meters = ["b01/main", "b04/lab2"] if inside else ["b02/main", "b04/main", "expo/chp-el"]
    plans = [world.plans["b01"]] if inside else [world.plans["b02"], world.plans["expo"]]
    out: list[tuple[str, str, dict[str, Any] | None, str]] = []
    for site in sites:
        out += [("GET", route.format(site), None, "read") for route in SITE_ROUTES]
        out.append(("GET", f"/plans?site_id={site}", None, "read"))
    for meter in meters:
        out += [("GET", route.format(world.meters[meter]), None, "read") for route in METER_ROUTES]
    for plan_id in plans:
        out += [("GET", route.format(plan_id), None, "read") for route in PLAN_READS]
        out.append(("POST", f"/plans/{plan_id}/approve", None, "decide"))
        out.append(("POST", f"/plans/{plan_id}/reject", {"reason": "no"}, "decide"))
    for site, level in (
        (("b01", "building"),) if inside else (("b02", "building"), ("expo", "park"))
    ):
        out.append(("POST", "/plans", body(site, level), "create"))
    return out


NEEDS = {"read": "viewer", "create": "manager", "decide": "operator"}
OK = {"read": 200, "create": 202, "decide": 200}


@pytest.mark.parametrize("role", ROLES)
async def test_scope_matrix(
    client: httpx.AsyncClient, app: FastAPI, world: World, role: str
) -> None:
    headers = as_key(world, role, "b01")
    failures = []
    for inside in (True, False):
        for method, path, payload, action in await calls(world, inside):
            if inside and action == "decide":
                path = path.replace(f"/{world.plans['b01']}/", f"/{await draft_b01(world)}/")
            response = await client.request(method, path, json=payload, headers=headers)
            allowed = RANK[role] >= RANK[NEEDS[action]]  # type: ignore[index]
            want = (OK[action] if allowed else 403) if inside else 404
            if response.status_code != want:
                failures.append(f"{role} {method} {path}: {response.status_code}, want {want}")
    await app.state.api.runner.wait_idle()
    assert failures == []
    async with connect(world.url) as conn:  # nothing outside was approved or rejected
        assert (await get_plan(conn, world.plans["b02"])).status == "draft"
        assert (await get_plan(conn, world.plans["expo"])).status == "draft"


async def test_lists_hold_only_the_subtree(client: httpx.AsyncClient, world: World) -> None:
    headers = as_key(world, "viewer", "b01")
    plans = (await client.get("/plans", headers=headers)).json()["plans"]
    assert [p["site_id"] for p in plans] == ["b01"]
    tenant = as_key(world, "viewer", "acme-bio")
    assert (await client.get("/plans", headers=tenant)).json()["plans"] == []
    assert (await client.get("/sites", headers=tenant)).json()["children"] == []
    assert (await client.get("/sites/acme-bio/load", headers=tenant)).status_code == 200
    assert (await client.get("/sites/b01/load", headers=tenant)).status_code == 404
