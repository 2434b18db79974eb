"""The FastAPI app: lifespan (pool, plan runner), routers, error handlers, metrics."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from energyhub.api import changes, errors, ui
from energyhub.api.access_cache import AccessCache
from energyhub.api.cache import ResponseCache
from energyhub.api.deps import ApiState
from energyhub.api.docs import offline_app
from energyhub.api.jobs import STALE_PENDING, PlanRunner
from energyhub.api.limits import one_value_each
from energyhub.api.metrics import ApiMetrics, MetricsMiddleware
from energyhub.api.routes import (
    alerts,
    carbon,
    carbon_assets,
    carbon_ledger,
    forecast,
    health,
    load,
    meters,
    plans,
    savings,
    sites,
)
from energyhub.api.size_limit import SizeLimitMiddleware
from energyhub.config import Settings, load_settings
from energyhub.errors import ConfigError
from energyhub.plans.store import fail_interrupted
from energyhub.sites import load_site
from energyhub.store.db import installed_backend, open_pool
from energyhub.store.migrations import require_schema
from energyhub.store.migrations.v009_access_notify import CHANNEL as ACCESS_CHANNEL
from energyhub.store.migrations.v010_site_load_notify import CHANNEL as SITE_LOAD_CHANNEL

log = logging.getLogger(__name__)

LOAD_CACHE_BYTES = 32 * 1024 * 1024
"""Most bytes of load answers one API process keeps (ENERGYHUB_API_LOAD_CACHE_S)."""

DESCRIPTION = """
Sites, load, meters, plans and approvals of an energyhub site tree.

**Authentication**: `Authorization: Bearer <key>` with a key from `energyhub keys create`.
`/health` and `/metrics` answer without a key.

**Scope**: a key sees its site's subtree. An id outside it answers **404**, exactly like an
unknown id, so a key cannot learn which sites, meters or plans exist elsewhere. A role too low
for an action answers **403** (viewer < manager < operator < admin: managers create plans,
operators approve and reject them).

**Limits**: a request spans at most `ENERGYHUB_API_MAX_RANGE_DAYS` and a response holds at most
`ENERGYHUB_API_MAX_POINTS` rows; beyond either the answer is a 422 that says how to page.

Times are RFC 3339 with a UTC offset (in the site's time zone); units are in field names.
"""


def utc_session(url: str) -> str:
    """The URL with `TimeZone=UTC` for its sessions: psycopg then returns datetimes in
    `datetime.timezone.utc`, which pandas converts ten times faster than a ZoneInfo zone."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        return url  # a key=value connection string: left as given
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = " ".join([*(v for k, v in query if k == "options"), "-c TimeZone=UTC"])
    query = [(k, v) for k, v in query if k != "options"] + [("options", options)]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


@asynccontextmanager
async def listening(url: str, timeout_s: float, state: ApiState) -> AsyncIterator[None]:
    """The listener of the caches that are on, as a task for the block's duration."""
    on: dict[str, list[AccessCache[Any] | ResponseCache]] = {
        ACCESS_CHANNEL: [c for c in (state.access_cache, state.meter_cache) if c.max_entries > 0],
        SITE_LOAD_CHANNEL: [state.load_cache] if state.load_cache.enabled else [],
    }
    caches: list[AccessCache[Any] | ResponseCache] = [c for cs in on.values() for c in cs]
    if not caches:
        yield
        return

    def hearing(channel: str) -> Callable[[str], None]:
        def heard(payload: str) -> None:
            for cache in on[channel]:
                cache.heard(payload)

        return heard

    def link(up: bool) -> None:
        for cache in caches:
            cache.reset(live=up)

    handlers = {channel: hearing(channel) for channel, cs in on.items() if cs}

    task = asyncio.create_task(changes.listen(url, timeout_s, handlers, link), name="listener")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the pool, check the schema, start the plan runner and the access cache's listener;
    close them on every path."""
    settings: Settings = app.state.settings
    metrics: ApiMetrics = app.state.metrics
    if not settings.db_url:
        raise ConfigError("ENERGYHUB_DB_URL is not set: the API needs the PostgreSQL URL")
    site = load_site(settings.site_file)
    async with open_pool(
        utc_session(settings.db_url),
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        timeout_s=settings.db_connect_timeout_s,
    ) as pool:
        async with pool.connection() as conn:
            await require_schema(conn)
            backend = await installed_backend(conn)
            await fail_interrupted(conn, datetime.now(UTC) - STALE_PENDING)
        runner = PlanRunner(pool, site, settings.api_plan_workers, metrics)
        load_cache = ResponseCache(settings.api_load_cache_s, LOAD_CACHE_BYTES)
        entries = settings.api_access_cache_entries
        app.state.api = state = ApiState(
            settings, pool, backend, site, runner, metrics, load_cache,
            AccessCache(entries), AccessCache(entries),
        )  # fmt: skip
        log.debug(
            "API ready: %s storage, pool of %d to %d connections, site file %s",
            backend.value, settings.db_pool_min, settings.db_pool_max, settings.site_file,
        )  # fmt: skip
        # what startup built lives as long as the process: out of the collector's reach, a full
        # collection no longer walks it (~90 ms, a request's tail latency when it struck)
        gc.collect()
        gc.freeze()
        try:
            async with listening(
                utc_session(settings.db_url), settings.db_connect_timeout_s, state
            ):
                yield
        finally:
            await runner.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for these settings (default: read from the environment)."""
    app = offline_app(
        title="energyhub API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings or load_settings()
    app.state.metrics = ApiMetrics()
    errors.install(app)
    for module in (
        sites,
        load,
        forecast,
        meters,
        plans,
        savings,
        health,
        alerts,
        carbon,
        carbon_assets,
        carbon_ledger,
        ui,
    ):
        app.include_router(module.router, dependencies=[Depends(one_value_each)])
    app.add_middleware(
        SizeLimitMiddleware,
        max_body_bytes=app.state.settings.api_max_body_bytes,
        max_query_bytes=app.state.settings.api_max_query_bytes,
    )
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    if app.state.settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=app.state.settings.api_cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app
