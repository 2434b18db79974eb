"""Connections: URL masking, a connect check with a clear error, the async pool, the backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from energyhub.errors import DatabaseUnavailableError


class Backend(StrEnum):
    """Which storage path the schema uses (DESIGN §5)."""

    TIMESCALEDB = "timescaledb"
    POSTGRES = "postgres"


def mask_url(url: str) -> str:
    """The URL with its password replaced by `***`, safe to print and log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def unavailable(url: str, exc: BaseException) -> DatabaseUnavailableError:
    """One line: which database, what went wrong, what to check."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DatabaseUnavailableError(
        f"cannot reach the database at {mask_url(url)}: {reason} — check that PostgreSQL is "
        "running and ENERGYHUB_DB_URL (host, port, user, database, password) is right",
        reason,
    )


async def start_clean_session(conn: AsyncConnection) -> None:
    """Forget prepared statements a reused server session may carry (PgBouncer in session mode,
    the single-session TimescaleDB test server): psycopg's automatic ones would collide by name."""
    await conn.execute("DEALLOCATE ALL")


@asynccontextmanager
async def connect(url: str, timeout_s: float = 10.0) -> AsyncIterator[AsyncConnection]:
    """One autocommit connection, closed on every path; unreachable → DatabaseUnavailableError."""
    try:
        conn = await AsyncConnection.connect(
            url, autocommit=True, connect_timeout=max(1, round(timeout_s))
        )
    except psycopg.OperationalError as exc:
        raise unavailable(url, exc) from None
    async with conn:
        await start_clean_session(conn)
        yield conn


@asynccontextmanager
async def open_pool(
    url: str, *, min_size: int = 1, max_size: int = 8, timeout_s: float = 10.0
) -> AsyncIterator[AsyncConnectionPool]:
    """An open pool whose first connection has been made, so a bad URL fails here, clearly.

    `reconnect_timeout` bounds each of the pool's reconnection attempts: its backoff doubles
    (1, 2, 4 … s) for up to 5 min by default, so after a 30-s database outage a pool could wait
    another 30 s before trying again. Given up after `timeout_s`, the next request that finds no
    connection starts a new attempt at once.
    """
    pool = AsyncConnectionPool(
        url,
        min_size=min(min_size, max_size),
        max_size=max_size,
        timeout=timeout_s,
        reconnect_timeout=timeout_s,
        open=False,
        kwargs={"autocommit": True, "connect_timeout": max(1, round(timeout_s))},
        configure=start_clean_session,
        name="energyhub",
    )
    try:
        await pool.open(wait=True, timeout=timeout_s)
    except Exception as exc:  # PoolTimeout says only that it timed out: ask once more for why
        await pool.close()
        raise unavailable(url, await _why_not(url, timeout_s) or exc) from None
    try:
        yield pool
    finally:
        await pool.close()


async def _why_not(url: str, timeout_s: float) -> BaseException | None:
    """The error one direct connection attempt ends in (None: it worked after all)."""
    try:
        conn = await AsyncConnection.connect(url, connect_timeout=max(1, round(timeout_s)))
    except psycopg.Error as exc:
        return exc
    await conn.close()
    return None


async def installed_backend(conn: AsyncConnection) -> Backend:
    """The backend an existing schema uses: the one its migrations recorded
    (`schema_version.backend`), so a schema installed on plain PostgreSQL
    (`ENERGYHUB_TIMESCALEDB=off`) keeps its plain tables when someone later creates the extension
    in its database; before any migration, TimescaleDB if the extension is installed here."""
    cur = await conn.execute("SELECT to_regclass('schema_version') IS NOT NULL")
    row = await cur.fetchone()
    if row and row[0]:
        cur = await conn.execute("SELECT backend FROM schema_version ORDER BY version DESC LIMIT 1")
        recorded = await cur.fetchone()
        if recorded:
            return Backend(recorded[0])
    cur = await conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    return Backend.TIMESCALEDB if await cur.fetchone() else Backend.POSTGRES


async def timescaledb_available(conn: AsyncConnection) -> bool:
    """Whether `CREATE EXTENSION timescaledb` can work on this server."""
    cur = await conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    return await cur.fetchone() is not None
