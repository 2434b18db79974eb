"""The access cache: key and scope answers reused per process while PostgreSQL reports changes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from energyhub.api import changes
from energyhub.api.access_cache import AccessCache
from energyhub.api.app import create_app
from energyhub.api.changes import APPLICATION_NAME, RETRY_S
from energyhub.api.keys import ApiKey, create_key, revoke_key
from energyhub.store.db import connect
from tests.api.conftest import World, as_key, heard, settings_for, write_reading


@asynccontextmanager
async def serving(world: World, entries: int = 10_000) -> AsyncIterator[FastAPI]:
    app = create_app(settings_for(world.url, api_access_cache_entries=entries))
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def client_of(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


async def counts(client: httpx.AsyncClient) -> tuple[float, float]:
    """The access cache's hits and misses from /metrics."""
    text = (await client.get("/metrics")).text
    found = {}
    for outcome in ("hit", "miss"):
        prefix = f'energyhub_api_access_cache_total{{outcome="{outcome}"}} '
        found[outcome] = next(
            float(x[len(prefix) :]) for x in text.splitlines() if x.startswith(prefix)
        )
    return found["hit"], found["miss"]


async def test_answers_are_reused_until_the_key_is_revoked(world: World) -> None:
    async with connect(world.url) as conn:
        key, token = await create_key(conn, "viewer", "b01", "soon revoked")
    headers = {"Authorization": f"Bearer {token}"}
    async with serving(world) as app, client_of(app) as client:
        await heard(app.state.api.access_cache)
        for path in ("/sites/b01", "/sites/b01/load", "/sites", "/sites/b01", "/sites/b01/load"):
            assert (await client.get(path, headers=headers)).status_code == 200
        # /sites/b01 and its load share one answer (the key and b01), /sites is the key alone
        assert await counts(client) == (3.0, 2.0)
        generation = app.state.api.access_cache.generation
        async with connect(world.url) as conn:
            await revoke_key(conn, key.id)
        heard_s = await heard(app.state.api.access_cache, since=generation)
        for path in ("/sites/b01", "/sites/b01/load", "/sites"):
            response = await client.get(path, headers=headers)
            assert response.status_code == 401, path
            assert response.json()["detail"] == "unknown or revoked API key"
    assert heard_s < 1.0


async def test_a_site_taken_out_of_the_tree_is_out_of_scope_once_heard(world: World) -> None:
    city = as_key(world, "admin", "shanghai")
    async with serving(world) as app, client_of(app) as client:
        await heard(app.state.api.access_cache)
        assert (await client.get("/sites/b02", headers=city)).status_code == 200
        assert (await client.get("/sites/b02", headers=city)).status_code == 200
        generation = app.state.api.access_cache.generation
        async with connect(world.url) as conn:
            await conn.execute("UPDATE sites SET active = false WHERE id = 'b02'")
        await heard(app.state.api.access_cache, since=generation)
        gone = await client.get("/sites/b02/load", headers=city)
        assert gone.status_code == 404
        assert gone.json()["detail"] == "no site 'b02'"


async def test_nothing_is_kept_while_the_listener_is_away(world: World) -> None:
    """The listening connection killed: every check goes to the database (a revocation counts at
    once) until the cache listens again, empty."""
    async with connect(world.url) as conn:
        key, token = await create_key(conn, "viewer", "b01", "revoked while deaf")
    headers = {"Authorization": f"Bearer {token}"}
    async with serving(world) as app, client_of(app) as client:
        cache = app.state.api.access_cache
        await heard(app.state.api.access_cache)
        assert (await client.get("/sites/b01", headers=headers)).status_code == 200
        assert len(cache) == 1
        async with connect(world.url) as conn:
            cur = await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s AND datname = current_database()",
                (APPLICATION_NAME,),
            )
            assert [row[0] for row in await cur.fetchall()] == [True]
            deadline = time.monotonic() + 5
            while cache.live:  # the listener sees its connection end when the loop runs
                assert time.monotonic() < deadline, "the listener did not notice"
                await asyncio.sleep(0.01)
            assert len(cache) == 0
            await revoke_key(conn, key.id)
            # the trigger's notification reaches no listener now; the database answers instead
            assert (await client.get("/sites/b01", headers=headers)).status_code == 401
        back_s = await heard(app.state.api.access_cache, within_s=RETRY_S + 5)
        assert len(cache) == 0
        assert (await client.get("/sites/b01", headers=headers)).status_code == 401
        assert len(cache) == 0  # an unknown or revoked token is never kept
    assert back_s <= RETRY_S + 5


async def test_off_when_zero_entries(world: World) -> None:
    headers = as_key(world, "viewer", "b01")
    async with serving(world, entries=0) as app, client_of(app) as client:
        for _ in range(3):
            assert (await client.get("/sites/b01", headers=headers)).status_code == 200
        assert await counts(client) == (0.0, 3.0)
        assert not app.state.api.access_cache.live


KEY = ApiKey(1, "ehk_abcdefgh", "viewer", "b01", None, datetime(2026, 1, 1, tzinfo=UTC), None)
ZONE = ZoneInfo("Asia/Shanghai")


def test_an_answer_read_before_a_change_is_not_stored() -> None:
    cache = AccessCache(10)
    cache.reset(live=True)
    before = cache.generation
    cache.reset(live=True)  # a notification while the query ran
    cache.put(before, "k", (KEY, ZONE))
    assert cache.get("k") is None
    cache.put(cache.generation, "k", (KEY, ZONE))
    assert cache.get("k") == (KEY, ZONE)


def test_nothing_is_stored_or_served_while_not_listening() -> None:
    cache = AccessCache(10)
    cache.put(cache.generation, "k", (KEY, None))
    assert len(cache) == 0
    cache.reset(live=True)
    cache.put(cache.generation, "k", (KEY, None))
    assert cache.get("k") == (KEY, None)
    cache.reset(live=False)
    assert cache.get("k") is None
    assert len(cache) == 0


@pytest.mark.parametrize("entries", [1, 3])
def test_the_oldest_answer_goes_first_when_full(entries: int) -> None:
    cache = AccessCache(entries)
    cache.reset(live=True)
    for i in range(entries + 1):
        cache.put(cache.generation, i, (KEY, None))
    assert len(cache) == entries
    assert cache.get(0) is None
    assert all(cache.get(i) is not None for i in range(1, entries + 1))


async def test_a_meter_lookup_is_reused_and_its_newest_reading_read_every_time(
    world: World,
) -> None:
    headers = as_key(world, "viewer", "b01")
    meter = world.meters["b01/main"]
    async with serving(world) as app, client_of(app) as client:
        cache = app.state.api.meter_cache
        await heard(cache)
        before = await client.get(f"/meters/{meter}/latest", headers=headers)
        await write_reading(world, "b01/main", 5, 1234.5)  # the day after the world's: newest
        after = await client.get(f"/meters/{meter}/latest", headers=headers)
        assert await counts(client) == (1.0, 1.0)
        assert before.status_code == after.status_code == 200
        assert before.json()["value"] != 1234.5
        assert after.json()["value"] == 1234.5
        assert after.json()["ts"] > before.json()["ts"]
        generation = cache.generation
        async with connect(world.url) as conn:
            await conn.execute("UPDATE meters SET active = false WHERE id = %s", (meter,))
        await heard(cache, since=generation)
        retired = await client.get(f"/meters/{meter}/latest", headers=headers)
        assert retired.status_code == 404
        assert retired.json()["detail"] == f"no meter {meter}"


async def listener_pids(world: World) -> list[int]:
    async with connect(world.url) as conn:
        cur = await conn.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE application_name = %s AND datname = current_database()",
            (APPLICATION_NAME,),
        )
        return [int(row[0]) for row in await cur.fetchall()]


async def test_a_slow_ping_keeps_the_listener(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Every ping counted slow (PING_SLOW_S 0): the caches go off and on with each, the
    connection stays, and each change is one line saying why."""
    monkeypatch.setattr(changes, "PING_S", 0.02)
    monkeypatch.setattr(changes, "PING_SLOW_S", 0.0)
    caplog.set_level(logging.INFO, logger=changes.__name__)
    async with serving(world) as app:
        cache = app.state.api.access_cache
        await heard(cache)
        first = await listener_pids(world)
        deadline = time.monotonic() + 5
        while "answered after" not in caplog.text:
            assert time.monotonic() < deadline, "no ping was slow"
            await asyncio.sleep(0.01)
        await heard(cache)
        assert await listener_pids(world) == first and len(first) == 1
    slow = [r.getMessage() for r in caplog.records if "has not answered" in r.getMessage()]
    assert slow and all("ping" in line for line in slow)


async def test_the_listener_says_why_it_stopped(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A ping unanswered past PING_GIVE_UP_S (0 here) ends the connection with a reason; the
    listener connects again."""
    monkeypatch.setattr(changes, "PING_S", 0.02)
    monkeypatch.setattr(changes, "PING_SLOW_S", 0.0)
    monkeypatch.setattr(changes, "PING_GIVE_UP_S", 0.0)
    caplog.set_level(logging.INFO, logger=changes.__name__)
    async with serving(world) as app:
        deadline = time.monotonic() + 5
        while "until it listens to PostgreSQL again" not in caplog.text:
            assert time.monotonic() < deadline, "the listener never gave up"
            await asyncio.sleep(0.01)
        monkeypatch.setattr(changes, "PING_SLOW_S", 5.0)
        monkeypatch.setattr(changes, "PING_GIVE_UP_S", 30.0)
        await heard(app.state.api.access_cache, within_s=RETRY_S + 5)
    off = [r.getMessage() for r in caplog.records if "until it listens" in r.getMessage()]
    assert off[0].endswith("did not answer the listener's ping within 0 s"), off


def test_every_reason_is_said() -> None:
    assert changes.why(TimeoutError()) == "PostgreSQL did not answer in time"
    assert changes.why(OSError()) == "OSError"
    assert changes.why(OSError("refused\nmore")) == "refused"
