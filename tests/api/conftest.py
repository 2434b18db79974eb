"""An API over a real database: the example site, a day of 1-minute readings, keys, plans."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI

from energyhub.api.access_cache import AccessCache
from energyhub.api.app import create_app
from energyhub.api.cache import ResponseCache
from energyhub.api.keys import ROLES, create_key
from energyhub.config import Settings
from energyhub.optimize import Plan, plan
from energyhub.plans.store import store_plan
from energyhub.sites import PV, SiteFile, Wind, load_site
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import connect, installed_backend, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter
from tests.conftest import DROPPER, CloneDatabase, DatabaseTemplates

REPO = Path(__file__).resolve().parents[2]
SITE_FILE = REPO / "examples" / "expo-park.yaml"
START = datetime(2026, 11, 20, tzinfo=UTC)
MINUTES = 24 * 60
KEY_SITES = ("shanghai", "b01", "acme-bio")
PLAN_SITES = (("building", "b01"), ("building", "b02"), ("park", "expo"))


@dataclass
class World:
    """What the database holds: meter ids by `site/name`, the raw series, keys, plan ids."""

    url: str
    meters: dict[str, int]
    series: dict[str, pd.Series]
    tokens: dict[tuple[str, str], str]
    plans: dict[str, int]

    def token(self, role: str = "admin", site: str = "shanghai") -> str:
        return self.tokens[(role, site)]


def plan_inputs(site: SiteFile, steps: int = 4, start: str = "2026-11-20") -> pd.DataFrame:
    """Modest demands for every building and available power for every PV and wind asset."""
    index = pd.date_range(start, periods=steps, freq="1h", tz="Asia/Shanghai", name="ts")
    columns: dict[str, float] = {"outdoor_c": 10.0}
    for park in site.city.parks:
        for building in park.buildings:
            for carrier, kw in (("electricity", 300.0), ("heat", 50.0), ("cooling", 50.0)):
                columns[f"{building.id}:{carrier}_kw"] = kw
        for owner in (park, *park.buildings):
            for asset in owner.assets:
                if isinstance(asset, PV | Wind):
                    columns[f"{asset.id}:available_kw"] = 10.0
    return pd.DataFrame(columns, index=index)


@functools.cache
def solved(level: str, site_id: str) -> Plan:
    site = load_site(SITE_FILE)
    return plan(site, plan_inputs(site), level=level, site_id=site_id)


def synthetic(meters: dict[str, int]) -> dict[str, pd.Series]:
    """A day at 1 minute: power meters, PV, rising counters (one with a gap), a battery SOC."""
    minutes = pd.date_range(START, periods=MINUTES, freq="1min")
    t = np.arange(MINUTES)
    rng = np.random.default_rng(7)
    series: dict[str, pd.Series] = {}
    for name in meters:
        meter = name.partition("/")[2]
        if meter == "main":
            series[name] = pd.Series(
                500 + 200 * np.sin(t / 150) + rng.normal(0, 5, MINUTES), minutes
            )
        elif meter == "pv":
            series[name] = pd.Series(
                np.clip(100 * np.sin((t - 360) / 1440 * 2 * np.pi), 0, None), minutes
            )
        elif name in ("b01/heat", "b01/f3", "b04/lab2", "b05/cleanroom"):
            series[name] = pd.Series(1000 + np.cumsum(rng.uniform(0.5, 2.0, MINUTES)), minutes)
        elif name == "b01/bess-soc":
            series[name] = pd.Series(50 + 20 * np.sin(t / 300), minutes)
    series["b01/f3"] = series["b01/f3"].drop(series["b01/f3"].index[600:660])
    return series


async def _load(url: str) -> tuple[dict[str, int], dict[str, pd.Series]]:
    async with connect(url) as conn:
        await migrate(conn)
        await sync_site(conn, load_site(SITE_FILE))
        cur = await conn.execute("SELECT site_id || '/' || name, id FROM meters")
        meters = {name: int(i) for name, i in await cur.fetchall()}
        backend = await installed_backend(conn)
    series = synthetic(meters)
    batch = ReadingBatch.concat(
        [
            ReadingBatch.from_columns(
                s.index.tz_convert(None).values, np.full(len(s), meters[n]), s.values
            )
            for n, s in series.items()
        ]
    )
    async with open_pool(url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(batch)
    async with connect(url) as conn:
        await refresh_rollups(conn, backend)
    return meters, series


async def build_world(url: str) -> World:
    meters, series = await _load(url)
    tokens: dict[tuple[str, str], str] = {}
    plans: dict[str, int] = {}
    async with connect(url) as conn:
        for role in ROLES:
            for site in KEY_SITES:
                _, tokens[(role, site)] = await create_key(conn, role, site, f"{role}@{site}")
        for level, site_id in PLAN_SITES:
            plans[site_id] = (await store_plan(conn, solved(level, site_id))).id
    return World(url, meters, series, tokens, plans)


@pytest.fixture
async def world(clone_database: CloneDatabase[World]) -> World:
    """A world of its own, for tests that change it (a copy of a template built once)."""
    url, built = await clone_database("api:world", build_world)
    return dataclasses.replace(built, url=url)


@pytest.fixture(scope="module")
def shared_world(database_templates: DatabaseTemplates) -> Iterator[World]:
    """One world for a module whose tests only read (a module overrides `world` with it)."""
    name, url, built = asyncio.run(database_templates.clone("api:world", build_world))
    try:
        yield dataclasses.replace(built, url=url)
    finally:
        DROPPER.drop(name)


def settings_for(url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"db_url": url, "site_file": SITE_FILE, "db_pool_max": 4}
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture
async def app(world: World) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running (pool open, plan runner started)."""
    application = create_app(settings_for(world.url, api_max_points=2000))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI, world: World) -> AsyncIterator[httpx.AsyncClient]:
    """A client with the city admin's key."""
    headers = {"Authorization": f"Bearer {world.token()}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as c:
        yield c


async def heard(
    cache: AccessCache | ResponseCache, since: int | None = None, within_s: float = 2.0
) -> float:
    """Seconds until `cache` (an app's access or load cache) is live (`since` None) or has heard a
    change after its generation `since`; fails after `within_s`."""
    started = time.perf_counter()
    while not (cache.live and (since is None or cache.generation > since)):
        assert time.perf_counter() - started < within_s, "the cache heard nothing"
        await asyncio.sleep(0.005)
    return time.perf_counter() - started


async def write_reading(world: World, meter: str, minutes: int, value: float) -> None:
    """One reading `minutes` into the day after the world's, committed and rolled up."""
    ts = np.array([np.datetime64(START.replace(tzinfo=None) + timedelta(days=1, minutes=minutes))])
    batch = ReadingBatch.from_columns(ts, np.array([world.meters[meter]]), np.array([value]))
    async with connect(world.url) as conn:
        backend = await installed_backend(conn)
    async with open_pool(world.url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(batch)
    async with connect(world.url) as conn:
        await refresh_rollups(conn, backend)


def as_key(world: World, role: str, site: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.token(role, site)}"}
