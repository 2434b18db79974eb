"""The API refuses oversized requests before reading them, and CORS is closed by default."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from fastapi import FastAPI

from energyhub.api.app import create_app
from tests.api.conftest import settings_for

from .conftest import KeyedDatabase

BODY_LIMIT = 4096


@pytest.fixture
async def app(keyed_db: KeyedDatabase) -> AsyncIterator[FastAPI]:
    application = create_app(settings_for(keyed_db.url, api_max_body_bytes=BODY_LIMIT))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI, keyed_db: KeyedDatabase) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {keyed_db.token}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as c:
        yield c


def plan_body(steps: int) -> bytes:
    ts = [f"2026-11-20T{h % 24:02d}:00:00+08:00" for h in range(steps)]
    columns = {"b01:electricity_kw": [300.0] * steps}
    return orjson.dumps(
        {"level": "building", "site_id": "b01", "inputs": {"ts": ts, "columns": columns}}
    )


async def test_a_body_over_the_limit_is_413_unread(client: httpx.AsyncClient) -> None:
    body = plan_body(200)
    assert len(body) > BODY_LIMIT
    response = await client.post(
        "/plans", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["detail"] == (
        f"the request body is {len(body)} bytes; the limit is {BODY_LIMIT} "
        "(ENERGYHUB_API_MAX_BODY_BYTES)"
    )
    assert response.json()["errors"][0]["location"] == "body"
    plans = await client.get("/plans")
    assert plans.json()["plans"] == []


async def test_a_chunked_body_is_cut_off_at_the_limit(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(100):
            yield b" " * 1000

    response = await client.post(
        "/plans", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["detail"] == (
        "the request body is more than 4096 bytes; the limit is 4096 (ENERGYHUB_API_MAX_BODY_BYTES)"
    )


async def test_a_body_under_the_limit_reaches_the_route(client: httpx.AsyncClient) -> None:
    body = plan_body(3)
    assert len(body) < BODY_LIMIT
    response = await client.post(
        "/plans",
        content=body.replace(b"b01:", b"b99:"),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422  # the route's own check: columns are missing
    assert response.json()["detail"].startswith("inputs.")


async def test_a_query_string_over_the_limit_is_414(client: httpx.AsyncClient) -> None:
    response = await client.get("/sites/b01/load", params={"step": "15m", "x": "a" * 9000})
    assert response.status_code == 414
    assert response.json()["detail"].startswith("the query string is 9")
    assert "the limit is 8192 (ENERGYHUB_API_MAX_QUERY_BYTES)" in response.json()["detail"]


async def test_the_default_body_limit_is_8_mib(keyed_db: KeyedDatabase) -> None:
    application = create_app(settings_for(keyed_db.url))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            response = await client.post("/plans", content=b"[" + b"0," * 4_200_000 + b"0]")
    assert response.status_code == 413
    assert "the limit is 8388608" in response.json()["detail"]


@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
async def test_no_cors_for_a_foreign_origin_by_default(
    client: httpx.AsyncClient, method: str
) -> None:
    headers = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    response = await client.request(method, "/sites", headers=headers)
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]
