"""Keys: bearer auth, 401s, hashed storage, revocation; health and metrics answer without a key."""

from __future__ import annotations

import hashlib
import logging

import httpx
import pytest
from fastapi import FastAPI

from energyhub.api.app import create_app
from energyhub.api.keys import create_key, revoke_key
from energyhub.store.db import connect
from energyhub.store.embedded import free_port
from tests.api.conftest import START, World, as_key, heard, settings_for


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "send an API key: Authorization: Bearer <key>"),
        ({"Authorization": "Bearer ehk_wrong"}, "unknown or revoked API key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "send an API key: Authorization: Bearer <key>"),
    ],
)
async def test_no_or_bad_key_is_401(app: FastAPI, headers: dict[str, str], detail: str) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as anonymous:
        response = await anonymous.get("/sites/b01", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"] == detail


async def test_keys_are_stored_hashed_and_revocable(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    token = world.token("viewer", "b01")
    async with connect(world.url) as conn:
        cur = await conn.execute("SELECT id, key_sha256, prefix FROM api_keys")
        rows = await cur.fetchall()
        dump = await (
            await conn.execute("SELECT string_agg(t::text, ' ') FROM api_keys AS t")
        ).fetchone()
        assert token not in dump[0]
        key_id = next(
            i for i, digest, _ in rows if bytes(digest) == hashlib.sha256(token.encode()).digest()
        )
        headers = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/sites/b01", headers=headers)).status_code == 200
        generation = app.state.api.access_cache.generation
        await revoke_key(conn, key_id)
    await heard(app.state.api.access_cache, since=generation)
    assert (await client.get("/sites/b01", headers=headers)).status_code == 401


@pytest.mark.parametrize(
    "route",
    ["/sites", "/sites/b01", "/sites/b01/load", "/meters/{main}", "/meters/{main}/latest",
     "/meters/{main}/readings", "/plans"],
)  # fmt: skip
async def test_a_revoked_key_is_refused_on_its_next_request(
    app: FastAPI, client: httpx.AsyncClient, world: World, route: str
) -> None:
    """Routes that look the key up together with the site or meter (one query) included. "Next":
    the first request after the process has heard of the revocation, milliseconds after its
    commit (its access cache may hold the key until then: test_access_cache.py)."""
    path = route.format(main=world.meters["b01/main"])
    async with connect(world.url) as conn:
        key, token = await create_key(conn, "viewer", "b01", "soon revoked")
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(3):
            assert (await client.get(path, headers=headers)).status_code == 200
        generation = app.state.api.access_cache.generation
        await revoke_key(conn, key.id)
    await heard(app.state.api.access_cache, since=generation)
    response = await client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"] == "unknown or revoked API key"


async def test_checks_answer_in_their_order(client: httpx.AsyncClient, world: World) -> None:
    """401 (key) before 422 (parameters) before 404 (scope) before 422 (the window's limits)."""
    nobody = {"Authorization": "Bearer ehk_wrong"}
    b01 = as_key(world, "viewer", "b01")
    day = {"start": START.isoformat(), "end": START.replace(day=21).isoformat()}
    backwards = {"start": day["end"], "end": day["start"]}
    for path in ("/sites/bad id!/load", "/sites/b01/load?step=7m", "/meters/abc/latest"):
        assert (await client.get(path, headers=nobody)).status_code == 401
    assert (await client.get("/sites/b02/load?step=7m", headers=b01)).status_code == 422
    assert (await client.get("/sites/b02/load", params=backwards, headers=b01)).status_code == 404
    assert (await client.get("/sites/b01/load", params=backwards, headers=b01)).status_code == 422
    main = world.meters["b01/main"]
    outside = world.meters["b02/main"]
    assert (await client.get(f"/meters/{outside}/readings?limit=0", headers=b01)).status_code == 422
    assert (await client.get(f"/meters/{outside}/readings", headers=b01)).status_code == 404
    latest = await client.get(f"/meters/{main}/latest", headers=b01)
    padded = await client.get(f"/meters/000{main}/latest", headers=b01)  # FastAPI reads it as int
    assert padded.status_code == 200
    assert padded.json()["ts"] == latest.json()["ts"]


async def test_the_key_never_reaches_the_log(
    client: httpx.AsyncClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await client.get("/sites/b01/load")
    await client.get("/sites/nowhere")
    assert world.token() not in caplog.text


async def test_health_without_a_key(app: FastAPI, world: World) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as anonymous:
        body = (await anonymous.get("/health")).json()
    assert body["status"] == "ok" or body["status"] == "degraded"
    assert body["database_reachable"] is True
    assert body["broker_configured"] is False and body["broker_reachable"] is None
    assert body["newest_reading_at"].startswith("2026-11-20T23:59:00")
    assert body["ingest_lag_s"] > 0


@pytest.mark.parametrize("reachable", [True, False])
async def test_health_checks_the_broker(world: World, reachable: bool) -> None:
    port = 1883 if reachable else free_port()
    app = create_app(settings_for(world.url, mqtt_url=f"mqtt://127.0.0.1:{port}"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as anonymous:
            response = await anonymous.get("/health")
    assert response.status_code == 200
    assert response.json()["broker_reachable"] is reachable
    assert response.json()["status"] == ("ok" if reachable else "degraded")


async def test_metrics_count_requests_by_route(client: httpx.AsyncClient) -> None:
    await client.get("/sites/b01")
    await client.get("/sites/nowhere")
    text = (await client.get("/metrics")).text
    assert (
        'energyhub_api_requests_total{method="GET",route="/sites/{site_id}",status="200"} 1.0'
        in text
    )
    assert (
        'energyhub_api_requests_total{method="GET",route="/sites/{site_id}",status="404"} 1.0'
        in text
    )
    assert "energyhub_api_request_seconds_bucket" in text
    assert "energyhub_api_plans_running 0.0" in text


async def test_no_cors_unless_configured(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"Origin": "https://example.org"})
    assert "access-control-allow-origin" not in response.headers


async def test_cors_for_configured_origins(world: World) -> None:
    app = create_app(settings_for(world.url, api_cors_origins=["https://ops.example"]))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as browser:
            preflight = await browser.options(
                "/sites/b01",
                headers={
                    "Origin": "https://ops.example",
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "Authorization",
                },
            )
            other = await browser.get("/health", headers={"Origin": "https://evil.example"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://ops.example"
    assert "access-control-allow-origin" not in other.headers
