"""Dependencies as Annotated aliases: the app state, a pooled connection, the caller's API key."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Annotated, TypeVar
from zoneinfo import ZoneInfo

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from energyhub.api.errors import ApiError
from energyhub.api.keys import ApiKey, Role, digest
from energyhub.api.schemas.common import ID_PATTERN
from energyhub.api.scope import (
    MeterAccess,
    MeterRow,
    RequestDb,
    SiteAccess,
    key_meter_access,
    key_site_access,
)
from energyhub.bounds import INT4_MAX
from energyhub.config import Settings
from energyhub.forecast.select import ModelCache
from energyhub.sites import SiteFile
from energyhub.store.db import Backend

if TYPE_CHECKING:
    from energyhub.api.access_cache import AccessCache
    from energyhub.api.cache import ResponseCache
    from energyhub.api.jobs import PlanRunner
    from energyhub.api.metrics import ApiMetrics


SiteAnswer = tuple[ApiKey | None, ZoneInfo | None]
"""A token's active key (None: unknown or revoked) and the site's zone (None: out of its scope)."""
MeterAnswer = tuple[ApiKey | None, MeterRow | None]
"""A token's active key (None: unknown or revoked) and the meter (None: out of its scope)."""


@dataclass
class ApiState:
    """What the lifespan opens once and every request shares."""

    settings: Settings
    pool: AsyncConnectionPool
    backend: Backend
    site: SiteFile
    runner: PlanRunner
    metrics: ApiMetrics
    load_cache: ResponseCache
    access_cache: AccessCache[SiteAnswer]
    meter_cache: AccessCache[MeterAnswer]
    forecast_models: ModelCache = field(default_factory=ModelCache)
    """Models fitted for forecasts made on request (GET /sites/{id}/forecast?source=now)."""


async def get_state(request: Request) -> ApiState:
    """Async, like every dependency here: FastAPI runs a plain `def` one in a worker thread."""
    state: ApiState = request.app.state.api
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


CONNECTION_WAIT_S = 2.0
"""How long a request waits for a pooled connection. While the database is away the pool has none
to give: the request answers 503 after this, not after the pool's connect timeout (10 s)."""


async def get_db(request: Request) -> AsyncIterator[RequestDb]:
    """The request's database: one pooled autocommit connection, taken on first use and kept to
    the request's end. Straight from the request, not through StateDep: FastAPI spends some
    50 µs on each dependency of every request."""
    pool: AsyncConnectionPool = request.app.state.api.pool
    async with AsyncExitStack() as stack:
        yield RequestDb(pool, stack, CONNECTION_WAIT_S)


DbDep = Annotated[RequestDb, Depends(get_db)]


async def get_conn(db: DbDep) -> AsyncConnection:
    """The request's connection, taken now (routes that query whatever the caches hold)."""
    return await db.conn()


ConnDep = Annotated[AsyncConnection, Depends(get_conn)]

bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `energyhub keys create`: `Authorization: Bearer ehk_...`.",
)


CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "send an API key: Authorization: Bearer <key>", headers=CHALLENGE)
    return credentials.credentials


def _active(key: ApiKey | None) -> ApiKey:
    if key is None:
        raise ApiError(401, "unknown or revoked API key", headers=CHALLENGE)
    return key


Found = TypeVar("Found")


async def _through(
    state: ApiState,
    cache: AccessCache[Found],
    entry: Hashable,
    lookup: Callable[[], Awaitable[Found]],
    kept: Callable[[Found], Found | None],
) -> tuple[Found, bool]:
    """`lookup()`, or its answer from `cache` (True: from there); stores `kept(answer)` unless
    it is None (an unknown token)."""
    hit = cache.get(entry)
    if hit is not None:
        state.metrics.access_cache_hits.inc()
        return hit, True
    state.metrics.access_cache_misses.inc()
    generation = cache.generation  # read before the query: see AccessCache.put
    found = await lookup()
    keep = kept(found)
    if keep is not None:
        cache.put(generation, entry, keep)
    return found, False


def _known(found: SiteAnswer) -> SiteAnswer | None:
    return found if found[0] is not None else None


async def _key_site(request: Request, db: RequestDb, token: str, site_id: str | None) -> SiteAnswer:
    """`key_site_access`, answered from the process's access cache when it holds the answer."""
    state: ApiState = request.app.state.api

    async def lookup() -> SiteAnswer:
        return await key_site_access(await db.conn(), token, site_id)

    found, _ = await _through(state, state.access_cache, (digest(token), site_id), lookup, _known)
    return found


async def current_key(request: Request, db: DbDep, credentials: CredentialsDep) -> ApiKey:
    """The caller's active key, or 401."""
    key, _ = await _key_site(request, db, _token(credentials), None)
    return _active(key)


CurrentKey = Annotated[ApiKey, Depends(current_key)]

_SITE_ID = re.compile(ID_PATTERN)
MAX_METER_ID = INT4_MAX


async def site_key(request: Request, db: DbDep, credentials: CredentialsDep) -> SiteAccess:
    """`current_key` and the path's `site_id` in the key's scope, in one query: 401 here, as
    `current_key` does; 404 for a site out of scope only from the route (`SiteAccess.zone`), after
    FastAPI has checked the parameters. A path id the route will refuse is not looked up."""
    token = _token(credentials)
    site_id = request.path_params.get("site_id")
    if not (isinstance(site_id, str) and len(site_id) <= 64 and _SITE_ID.match(site_id)):
        site_id = None
    key, zone = await _key_site(request, db, token, site_id)
    return SiteAccess(_active(key), site_id, zone)


SiteKey = Annotated[SiteAccess, Depends(site_key)]


def _meter_id(raw: object) -> int | None:
    """The path's meter id if it is one the route accepts, else None (not looked up)."""
    if not (isinstance(raw, str) and 0 < len(raw) <= 10 and raw.isascii() and raw.isdigit()):
        return None
    return int(raw) if 1 <= int(raw) <= MAX_METER_ID else None


def _without_latest(found: MeterAnswer) -> MeterAnswer | None:
    """What the access cache keeps of a meter lookup: not its newest reading."""
    key, meter = found
    if key is None:
        return None
    return key, None if meter is None else replace(meter, latest_ts=None, latest_value=None)


async def meter_key(request: Request, db: DbDep, credentials: CredentialsDep) -> MeterAccess:
    """`current_key` and the path's `meter_id` in the key's scope, in one query with the meter's
    newest reading (see `site_key`), or from the access cache without it."""
    token = _token(credentials)
    meter_id = _meter_id(request.path_params.get("meter_id"))
    if meter_id is None:
        key, _ = await _key_site(request, db, token, None)
        return MeterAccess(_active(key), None, None)
    state: ApiState = request.app.state.api

    async def lookup() -> MeterAnswer:
        return await key_meter_access(await db.conn(), token, meter_id)

    entry = (digest(token), meter_id)
    (key, meter), cached = await _through(state, state.meter_cache, entry, lookup, _without_latest)
    return MeterAccess(_active(key), meter_id, meter, latest_read=not cached)


MeterKey = Annotated[MeterAccess, Depends(meter_key)]


def require_role(key: ApiKey, role: Role, action: str) -> None:
    """403 unless the key's role is `role` or above."""
    if not key.allows(role):
        raise ApiError(403, f"a {key.role} key cannot {action}: it needs {role} or above")


SitePath = Annotated[
    str,
    Path(
        min_length=1, max_length=64, pattern=ID_PATTERN, description="A site id.", examples=["b01"]
    ),
]
