from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from energyhub.sites import SiteFile, load_site
from energyhub.store.db import Backend, connect, installed_backend, open_pool
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site


@pytest.fixture
def example_site(example_site_path: Path) -> SiteFile:
    return load_site(example_site_path)


@pytest.fixture
async def conn(store_url: str) -> AsyncIterator[AsyncConnection]:
    """An autocommit connection to a migrated database (each backend in turn)."""
    async with connect(store_url) as connection:
        await migrate(connection)
        yield connection


@pytest.fixture
async def backend(conn: AsyncConnection) -> Backend:
    return await installed_backend(conn)


@pytest.fixture
async def loaded(conn: AsyncConnection, example_site: SiteFile) -> AsyncConnection:
    """The migrated database with the example site loaded."""
    await sync_site(conn, example_site)
    return conn


@pytest.fixture
async def pool(store_url: str, conn: AsyncConnection) -> AsyncIterator[AsyncConnectionPool]:
    """A pool of one connection (the TimescaleDB test server takes one at a time).

    Depends on `conn` so the schema exists; on TimescaleDB the test must not hold `conn` busy
    while it uses the pool, so this fixture closes it first.
    """
    await conn.close()
    async with open_pool(store_url, max_size=1) as opened:
        yield opened
