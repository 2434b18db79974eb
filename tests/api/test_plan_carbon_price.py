"""Decisions with the allowances in view: POST /plans prices a building's carbon from its
allowance position as the scheduler's re-plans do, and the plan page weighs the frontier's
abatement costs against the allowance price."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI

from energyhub.api.app import create_app
from energyhub.sites import load_site
from energyhub.store.allowances import store_prices
from energyhub.store.db import connect
from energyhub.store.sync import sync_site
from tests.api.conftest import SITE_FILE, World, settings_for
from tests.api.test_plans import body, finished

Edit = Callable[[dict[str, Any]], None]


Served = tuple[httpx.AsyncClient, FastAPI]


@asynccontextmanager
async def _serve(world: World, tmp_path: Path, edit: Edit) -> AsyncIterator[Served]:
    """The API over the example site with `edit` applied to its file (and synced)."""
    data = yaml.safe_load(SITE_FILE.read_text())
    edit(data)
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(data, allow_unicode=True))
    async with connect(world.url) as conn:
        await sync_site(conn, load_site(site_file))
    app: FastAPI = create_app(settings_for(world.url, site_file=site_file, api_max_points=2000))
    headers = {"Authorization": f"Bearer {world.token()}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=headers
        ) as client:
            yield client, app


def _b01(data: dict[str, Any]) -> dict[str, Any]:
    building: dict[str, Any] = data["city"]["parks"][0]["buildings"][0]
    assert building["id"] == "b01"
    return building


def _position_priced(data: dict[str, Any]) -> None:
    _b01(data)["carbon_scheme"] = {"price_series": "SHEA", "plan_price": "position"}


def _tenant_series(data: dict[str, Any]) -> None:
    tenant = _b01(data)["enterprises"][0]
    assert tenant["id"] == "acme-bio"
    tenant["carbon_scheme"] = {"price_series": "SHEA"}


@pytest.fixture
async def priced(world: World, tmp_path: Path) -> AsyncIterator[Served]:
    async with _serve(world, tmp_path, _position_priced) as served:
        yield served


@pytest.fixture
async def tenant_priced(world: World, tmp_path: Path) -> AsyncIterator[Served]:
    async with _serve(world, tmp_path, _tenant_series) as served:
        yield served


async def _prices(world: World, *values: tuple[date, float]) -> None:
    async with connect(world.url) as conn:
        await store_prices(conn, "SHEA", [d for d, _ in values], [p for _, p in values])


async def test_an_api_plan_prices_carbon_from_the_position(priced: Served, world: World) -> None:
    # b01 holds no allowances but has emitted this year: a shortfall, closed at the market price
    # on or before the plan's first day (Asia/Shanghai), not after it.
    await _prices(world, (date(2026, 11, 1), 150.0), (date(2026, 11, 21), 40.0))
    client, app = priced
    request = body(steps=4)
    created = await client.post("/plans", json=request)
    assert created.status_code == 202, created.text
    done = await finished(client, app, created.json()["id"])
    assert done["status"] == "draft", done
    notes = [w for w in done["warnings"] if w.startswith("carbon price")]
    assert len(notes) == 1, done["warnings"]
    assert notes[0].startswith("carbon price 150 CNY/t from the allowance position: shortfall of ")
    assert done["cost_cny"]["carbon"] == pytest.approx(done["co2_kg"] * 0.150, rel=1e-6)

    # A park's plan is not a building's: its carbon stays at the site file's price.
    park = await client.post("/plans", json=body(site_id="expo", level="park", steps=4))
    assert park.status_code == 202, park.text
    other = await finished(client, app, park.json()["id"])
    assert other["status"] == "draft", other
    assert not [w for w in other["warnings"] if w.startswith("carbon price")]
    site_price = load_site(SITE_FILE).city.carbon.price_cny_per_t
    assert other["cost_cny"]["carbon"] == pytest.approx(
        other["co2_kg"] * site_price / 1000, rel=1e-6
    )


async def test_a_picked_point_keeps_the_position_price(priced: Served, world: World) -> None:
    await _prices(world, (date(2026, 11, 1), 150.0))
    client, app = priced
    created = (await client.post("/plans", json=body(steps=6) | {"frontier": 3})).json()
    done = await finished(client, app, created["id"])
    assert done["status"] == "draft", done
    picked = await client.post(f"/plans/{created['id']}/frontier/2")
    assert picked.status_code == 200, picked.text
    new = picked.json()
    assert new["cost_cny"]["carbon"] == pytest.approx(new["co2_kg"] * 0.150, rel=1e-6)


async def test_without_a_price_the_api_plan_says_why(priced: Served, world: World) -> None:
    client, app = priced
    created = (await client.post("/plans", json=body(steps=4))).json()
    done = await finished(client, app, created["id"])
    notes = [w for w in done["warnings"] if w.startswith("carbon price")]
    assert len(notes) == 1 and notes[0].startswith("carbon price: shortfall of "), notes
    assert notes[0].endswith(" t but no market price")


def _marked(page: str) -> list[int]:
    rows = re.findall(r'<tr data-point="(\d+)">(.*?)</tr>', page, flags=re.S)
    return [int(i) for i, row in rows if "below allowance price" in row]


async def test_the_frontier_is_weighed_against_the_allowance_price(
    tenant_priced: Served, world: World
) -> None:
    client, app = tenant_priced
    created = (await client.post("/plans", json=body(steps=6) | {"frontier": 3})).json()
    done = await finished(client, app, created["id"])
    assert done["status"] == "draft", done
    page = (await client.get(f"/ui/plans/{created['id']}")).text
    assert 'id="allowance-price"' not in page and _marked(page) == []  # no price stored yet

    costs = [p["abatement_cny_per_t"] for p in done["frontier"][1:]]
    assert all(c is not None and c > 0 for c in costs), costs
    cheap = min(costs)
    price = cheap + 1.0  # above the cheapest step only (unless the steps cost the same)
    await _prices(world, (date(2026, 11, 18), price), (date(2026, 11, 25), 1e6))
    page = (await client.get(f"/ui/plans/{created['id']}")).text
    line = re.search(r'<p id="allowance-price">(.*?)</p>', page, flags=re.S)
    assert line is not None
    assert line.group(1).startswith(f"allowance price {price:,.0f} CNY/t on 2026-11-18 (SHEA)")
    expected = [p["index"] for p in done["frontier"][1:] if p["abatement_cny_per_t"] < price]
    assert _marked(page) == expected and 1 <= len(expected) <= 2
    assert 0 not in expected  # the cost-optimal point abates nothing


async def test_a_plan_without_a_price_series_shows_no_allowance_price(
    client: httpx.AsyncClient, app: FastAPI, world: World
) -> None:
    await _prices(world, (date(2026, 11, 18), 80.0))  # a series nobody of b01 uses
    created = (await client.post("/plans", json=body(steps=6) | {"frontier": 3})).json()
    done = await finished(client, app, created["id"])
    assert done["status"] == "draft", done
    page = (await client.get(f"/ui/plans/{created['id']}")).text
    assert 'data-chart="frontier"' in page
    assert 'id="allowance-price"' not in page and _marked(page) == []
