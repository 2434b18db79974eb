"""Meters: details, the latest value, raw readings paged with a cursor."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pandas as pd
import pytest

from tests.api.conftest import START, World, as_key

DAY = {"start": START.isoformat(), "end": (START + timedelta(days=1)).isoformat()}


@pytest.fixture
def world(shared_world: World) -> World:
    """These tests only read: one database for the module."""
    return shared_world


async def test_meter_and_latest(client: httpx.AsyncClient, world: World) -> None:
    meter_id = world.meters["b01/main"]
    meter = (await client.get(f"/meters/{meter_id}")).json()
    assert meter["site_id"] == "b01" and meter["name"] == "main" and meter["quantity"] == "power_kw"
    latest = (await client.get(f"/meters/{meter_id}/latest")).json()
    series = world.series["b01/main"]
    assert latest["value"] == series.iloc[-1]
    assert pd.Timestamp(latest["ts"]) == series.index[-1]
    assert latest["ts"].endswith("+08:00")
    assert latest["age_s"] > 0


async def test_latest_of_a_silent_meter_is_404(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(f"/meters/{world.meters['b01/indoor']}/latest")
    assert response.status_code == 404
    assert "no reading" in response.json()["detail"]


async def test_readings_page_through_the_day_exactly_once(
    client: httpx.AsyncClient, world: World
) -> None:
    meter_id = world.meters["b01/f3"]
    seen: list[tuple[pd.Timestamp, float]] = []
    cursor = None
    pages = 0
    while True:
        params = {**DAY, "limit": "500", **({"cursor": cursor} if cursor else {})}
        body = (await client.get(f"/meters/{meter_id}/readings", params=params)).json()
        seen += [(pd.Timestamp(r["ts"]), r["value"]) for r in body["readings"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    want = world.series["b01/f3"]
    assert pages == -(-len(want) // 500)
    assert [ts for ts, _ in seen] == list(want.index)
    assert [v for _, v in seen] == list(want.values)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "2001"}, "limit"),
        ({"start": "2026-11-20"}, "start"),
    ],
)
async def test_bad_paging_input(
    client: httpx.AsyncClient, world: World, params: dict[str, str], field: str
) -> None:
    response = await client.get(f"/meters/{world.meters['b01/main']}/readings", params=params)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_limit_above_the_maximum_says_how_to_page(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(
        f"/meters/{world.meters['b01/main']}/readings", params={"limit": "5000"}
    )
    assert "at most 2000 readings per page" in response.json()["detail"]
    assert "next_cursor" in response.json()["detail"]


@pytest.mark.parametrize(
    "path", ["/meters/99999", "/meters/0", "/meters/abc", "/meters/99999999999"]
)
async def test_unknown_or_malformed_meter(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == (404 if path == "/meters/99999" else 422)


async def test_a_tenant_reads_its_submeter_in_another_building(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = as_key(world, "viewer", "acme-bio")
    assert (
        await client.get(f"/meters/{world.meters['b04/lab2']}", headers=headers)
    ).status_code == 200
    assert (
        await client.get(f"/meters/{world.meters['b04/main']}", headers=headers)
    ).status_code == 404
