"""Dependencies as Annotated aliases: the app state, a pooled connection, the caller's API key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from energyhub.api.errors import ApiError
from energyhub.api.keys import ApiKey, Role, find_key
from energyhub.api.schemas.common import ID_PATTERN
from energyhub.config import Settings
from energyhub.sites import SiteFile
from energyhub.store.db import Backend

if TYPE_CHECKING:
    from energyhub.api.jobs import PlanRunner
    from energyhub.api.metrics import ApiMetrics


@dataclass
class ApiState:
    """What the lifespan opens once and every request shares."""

    settings: Settings
    pool: AsyncConnectionPool
    backend: Backend
    site: SiteFile
    runner: PlanRunner
    metrics: ApiMetrics


async def get_state(request: Request) -> ApiState:
    """Async, like every dependency here: FastAPI runs a plain `def` one in a worker thread."""
    state: ApiState = request.app.state.api
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


async def get_pool(state: StateDep) -> AsyncConnectionPool:
    return state.pool


PoolDep = Annotated[AsyncConnectionPool, Depends(get_pool)]


CONNECTION_WAIT_S = 2.0
"""How long a request waits for a pooled connection. While the database is away the pool has none
to give: the request answers 503 after this, not after the pool's connect timeout (10 s)."""


async def get_conn(pool: PoolDep) -> AsyncIterator[AsyncConnection]:
    """One pooled autocommit connection for the whole request."""
    async with pool.connection(timeout=CONNECTION_WAIT_S) as conn:
        yield conn


ConnDep = Annotated[AsyncConnection, Depends(get_conn)]

bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `energyhub keys create`: `Authorization: Bearer ehk_...`.",
)


async def current_key(
    conn: ConnDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> ApiKey:
    """The caller's active key, or 401."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "send an API key: Authorization: Bearer <key>", headers=challenge)
    key = await find_key(conn, credentials.credentials)
    if key is None:
        raise ApiError(401, "unknown or revoked API key", headers=challenge)
    return key


CurrentKey = Annotated[ApiKey, Depends(current_key)]


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
