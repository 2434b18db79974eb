"""The load answer cache: rollup answers until their window changes, others within the bound
(ENERGYHUB_API_LOAD_CACHE_S); the key and scope checked on every request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
from fastapi import FastAPI

from energyhub.api.app import create_app
from energyhub.api.cache import ResponseCache
from energyhub.api.keys import create_key, revoke_key
from energyhub.store.db import connect
from tests.api.conftest import START, World, as_key, heard, settings_for, write_reading

NEXT_DAY = {
    "start": (START + timedelta(days=1)).isoformat(),
    "end": (START + timedelta(days=2)).isoformat(),
    "step": "15m",
}
"""A day after the world's readings: no points until a test writes one."""


@asynccontextmanager
async def api(world: World, cache_s: float) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app whose load answers are reused for `cache_s` and a client with the admin's key."""
    app = create_app(settings_for(world.url, api_load_cache_s=cache_s))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {world.token()}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=headers
        ) as client:
            yield app, client


def electricity(response: httpx.Response) -> list[float | None]:
    assert response.status_code == 200, response.text
    return [point["electricity_kw"] for point in response.json()["points"]]


async def test_data_committed_is_in_every_answer_after_the_bound(world: World) -> None:
    bound_s = 0.5
    async with api(world, bound_s) as (_, client):
        assert electricity(await client.get("/sites/b01/load", params=NEXT_DAY)) == []
        await write_reading(world, "b01/main", 5, 1234.5)
        committed = time.monotonic()  # after the commit: the check below errs on the safe side
        await asyncio.sleep(bound_s)
        assert time.monotonic() - committed >= bound_s
        assert electricity(await client.get("/sites/b01/load", params=NEXT_DAY)) == [1234.5]


async def test_a_reused_answer_is_the_same_bytes_and_counted(world: World) -> None:
    """At 5 min (summed from the meters, not a per-site rollup): reused within the bound."""
    five = {**NEXT_DAY, "step": "5m"}
    async with api(world, 60) as (_, client):
        first = await client.get("/sites/expo/load", params=five)
        await write_reading(world, "b01/main", 5, 1234.5)
        again = await client.get("/sites/expo/load", params=five)
        csv = await client.get("/sites/expo/load", params={**five, "format": "csv"})
        metrics = (await client.get("/metrics")).text
    assert again.content == first.content
    assert again.headers["content-type"] == "application/json"
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert "1234.5" in csv.text  # the CSV is its own request, queried after the write
    assert 'energyhub_api_load_cache_total{outcome="hit"} 1.0' in metrics
    assert 'energyhub_api_load_cache_total{outcome="miss"} 2.0' in metrics


async def test_a_rollup_answer_is_kept_until_its_window_changes(world: World) -> None:
    """15 min on plain PostgreSQL: kept past the bound, dropped when the rollups change in its
    window (heard from PostgreSQL), kept when they change elsewhere."""
    today = {**NEXT_DAY, "start": START.isoformat(), "end": NEXT_DAY["start"]}
    async with api(world, 0.2) as (app, client):
        cache = app.state.api.load_cache
        await heard(cache)
        assert electricity(await client.get("/sites/b01/load", params=NEXT_DAY)) == []
        before = await client.get("/sites/b01/load", params=today)
        await asyncio.sleep(0.3)  # past the bound: windowed answers do not expire
        generation = cache.generation
        await write_reading(world, "b01/main", 5, 1234.5)
        await heard(cache, since=generation)
        assert electricity(await client.get("/sites/b01/load", params=NEXT_DAY)) == [1234.5]
        after = await client.get("/sites/b01/load", params=today)
        metrics = (await client.get("/metrics")).text
    assert after.content == before.content
    assert 'energyhub_api_load_cache_total{outcome="hit"} 1.0' in metrics
    assert 'energyhub_api_load_cache_total{outcome="miss"} 3.0' in metrics


async def test_a_reused_answer_still_checks_the_key_and_its_scope(world: World) -> None:
    async with connect(world.url) as conn:
        key, token = await create_key(conn, "admin", "shanghai", "soon revoked")
    admin = {"Authorization": f"Bearer {token}"}
    async with api(world, 60) as (app, client):
        assert (await client.get("/sites/expo/load", params=NEXT_DAY, headers=admin)).is_success
        outside = await client.get(
            "/sites/expo/load", params=NEXT_DAY, headers=as_key(world, "viewer", "b01")
        )
        assert outside.status_code == 404
        assert outside.json()["detail"] == "no site 'expo'"
        generation = app.state.api.access_cache.generation
        async with connect(world.url) as conn:
            await revoke_key(conn, key.id)
        await heard(app.state.api.access_cache, since=generation)
        revoked = await client.get("/sites/expo/load", params=NEXT_DAY, headers=admin)
        assert revoked.status_code == 401
        nokey = await client.get("/sites/expo/load", params=NEXT_DAY, headers={"Authorization": ""})
        assert nokey.status_code == 401


async def test_off_when_zero(world: World) -> None:
    async with api(world, 0) as (_, client):
        assert electricity(await client.get("/sites/b01/load", params=NEXT_DAY)) == []
        await write_reading(world, "b01/main", 5, 1234.5)
        assert electricity(await client.get("/sites/b01/load", params=NEXT_DAY)) == [1234.5]


def test_entries_expire_and_the_byte_budget_holds() -> None:
    cache = ResponseCache(ttl_s=60, max_bytes=10)
    started = cache.now()
    cache.put("a", started, b"12345")
    cache.put("b", started, b"67890")
    assert cache.get("a") == b"12345" and cache.get("b") == b"67890"
    cache.put("c", started, b"x")  # over 10 bytes: the oldest goes
    assert cache.get("a") is None and cache.get("b") == b"67890" and len(cache) == 2
    cache.put("big", started, b"x" * 11)  # larger than the whole budget: not kept
    assert cache.get("big") is None
    cache.put("old", started - 60, b"y")  # its query started a bound ago: never served
    assert cache.get("old") is None
    off = ResponseCache(ttl_s=0, max_bytes=10)
    off.put("a", off.now(), b"1")
    assert off.get("a") is None and len(off) == 0


def test_windowed_entries_hold_until_a_change_touches_them() -> None:
    cache = ResponseCache(ttl_s=0.001, max_bytes=100)
    cache.put("a", cache.now(), b"a", (0, 100), cache.generation)
    assert cache.get("a") is None  # not stored: nothing is heard yet
    cache.reset(live=True)
    for key, span in (("a", (0.0, 100.0)), ("b", (100.0, 200.0)), ("c", (200.0, 300.0))):
        cache.put(key, cache.now(), key.encode(), span, cache.generation)
    time.sleep(0.002)  # past the bound
    assert [cache.get(k) for k in "abc"] == [b"a", b"b", b"c"]
    cache.heard("150 160")  # the buckets starting at 150 .. 160 changed
    assert [cache.get(k) for k in "abc"] == [b"a", None, b"c"]
    cache.heard("300 400")  # c's window ends before 300
    assert cache.get("c") == b"c"
    before = cache.generation
    cache.heard("500 600")  # a change while a query ran: its answer is not stored
    cache.put("d", cache.now(), b"d", (0.0, 1.0), before)
    assert cache.get("d") is None
    cache.put("f", cache.now(), b"f", (0.0, 1.0), cache.generation)
    cache.heard("not two numbers")  # read as "all"
    assert cache.get("f") is None
    cache.put("f", cache.now(), b"f", (0.0, 1.0), cache.generation)
    cache.heard("all")
    assert [cache.get(k) for k in "acf"] == [None, None, None]
    cache.put("e", cache.now(), b"e", (0.0, 1.0), cache.generation)
    cache.reset(live=False)  # the listener went away
    assert cache.get("e") is None and len(cache) == 0
