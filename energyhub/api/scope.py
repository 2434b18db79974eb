"""Site scope: a key sees its site's subtree; anything outside answers 404, like an unknown id.

404 rather than 403 so that a key cannot learn which ids exist outside its scope.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from energyhub.api.errors import not_found
from energyhub.api.keys import ApiKey, digest

ACCESS = """
WITH RECURSIVE up (id, parent_id, tz) AS (
    SELECT id, parent_id, attributes->>'timezone' FROM sites
    WHERE id = ANY(%(sites)s) AND active
    UNION
    SELECT s.id, s.parent_id, s.attributes->>'timezone'
    FROM sites AS s JOIN up ON s.id = up.parent_id
)
SELECT coalesce(bool_or(id = %(scope)s), false), max(tz) FROM up"""

SUBTREE = """
WITH RECURSIVE down (id, parent_id, kind, name) AS (
    SELECT id, parent_id, kind, name FROM sites WHERE id = %s AND active
    UNION ALL
    SELECT s.id, s.parent_id, s.kind, s.name FROM sites AS s JOIN down ON s.parent_id = down.id
    WHERE s.active
)
SELECT id, parent_id, kind, name FROM down"""

METER = """
WITH RECURSIVE owners (id) AS (
    SELECT site_id FROM meters WHERE id = %(meter)s AND active
    UNION
    SELECT enterprise_id FROM enterprise_meters WHERE meter_id = %(meter)s
), up (id, parent_id, tz) AS (
    SELECT s.id, s.parent_id, s.attributes->>'timezone' FROM sites AS s
    JOIN owners ON s.id = owners.id WHERE s.active
    UNION
    SELECT s.id, s.parent_id, s.attributes->>'timezone'
    FROM sites AS s JOIN up ON s.id = up.parent_id
)
SELECT m.id, m.site_id, m.name, m.carrier, m.quantity, m.parent_meter_id, m.asset_id,
       m.rollover_kwh, (SELECT coalesce(bool_or(id = %(scope)s), false) FROM up) AS in_scope,
       (SELECT max(tz) FROM up) AS tz, latest.ts AS latest_ts, latest.value AS latest_value
FROM meters AS m LEFT JOIN meter_latest AS latest ON latest.meter_id = m.id
WHERE m.id = %(meter)s AND m.active"""
"""A meter with whether its site, or an enterprise it serves, lies in the key's subtree, and its
newest reading (one round trip for `/meters/{id}/latest`)."""

KEY = """
SELECT k.id, k.prefix, k.role, k.site_id, k.name, k.created_at, k.revoked_at
FROM api_keys AS k WHERE k.key_sha256 = %(digest)s AND k.revoked_at IS NULL"""

KEY_SITE = """
WITH RECURSIVE up (id, parent_id, tz) AS (
    SELECT id, parent_id, attributes->>'timezone' FROM sites WHERE id = %(site)s AND active
    UNION
    SELECT s.id, s.parent_id, s.attributes->>'timezone'
    FROM sites AS s JOIN up ON s.id = up.parent_id
)
SELECT k.id, k.prefix, k.role, k.site_id, k.name, k.created_at, k.revoked_at,
       coalesce((SELECT bool_or(up.id = k.site_id) FROM up), false), (SELECT max(tz) FROM up)
FROM api_keys AS k WHERE k.key_sha256 = %(digest)s AND k.revoked_at IS NULL"""
"""The active key of a token and whether a site lies in its subtree, with the city's time zone:
the key lookup and `ACCESS` in one round trip. No row: unknown or revoked key."""

KEY_METER = """
WITH RECURSIVE owners (id) AS (
    SELECT site_id FROM meters WHERE id = %(meter)s AND active
    UNION
    SELECT enterprise_id FROM enterprise_meters WHERE meter_id = %(meter)s
), up (id, parent_id, tz) AS (
    SELECT s.id, s.parent_id, s.attributes->>'timezone' FROM sites AS s
    JOIN owners ON s.id = owners.id WHERE s.active
    UNION
    SELECT s.id, s.parent_id, s.attributes->>'timezone'
    FROM sites AS s JOIN up ON s.id = up.parent_id
)
SELECT k.id, k.prefix, k.role, k.site_id, k.name, k.created_at, k.revoked_at,
       m.id, m.site_id, m.name, m.carrier, m.quantity, m.parent_meter_id, m.asset_id,
       m.rollover_kwh, coalesce((SELECT bool_or(up.id = k.site_id) FROM up), false),
       (SELECT max(tz) FROM up), latest.ts, latest.value
FROM api_keys AS k
LEFT JOIN meters AS m ON m.id = %(meter)s AND m.active
LEFT JOIN meter_latest AS latest ON latest.meter_id = m.id
WHERE k.key_sha256 = %(digest)s AND k.revoked_at IS NULL"""
"""The active key of a token and `METER` in one round trip (no row: unknown or revoked key)."""

LATEST = "SELECT ts, value FROM meter_latest WHERE meter_id = %s"

KEY_COLUMNS = 7


class RequestDb:
    """A request's pooled connection, taken from the pool on first use and returned when the
    request's `stack` closes: an answer the caches hold needs no connection."""

    def __init__(self, pool: AsyncConnectionPool, stack: AsyncExitStack, wait_s: float) -> None:
        self._pool = pool
        self._stack = stack
        self._wait_s = wait_s
        self._conn: AsyncConnection | None = None

    async def conn(self) -> AsyncConnection:
        if self._conn is None:
            self._conn = await self._stack.enter_async_context(
                self._pool.connection(timeout=self._wait_s)
            )
        return self._conn


@dataclass(frozen=True, slots=True)
class SiteRow:
    id: str
    parent_id: str | None
    kind: str
    name: str | None


@dataclass(frozen=True, slots=True)
class MeterRow:
    id: int
    site_id: str
    name: str
    carrier: str
    quantity: str
    parent_meter_id: int | None
    asset_id: str | None
    rollover_kwh: float | None
    in_scope: bool
    tz: str | None
    latest_ts: datetime | None
    latest_value: float | None


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


async def _access(conn: AsyncConnection, key: ApiKey, sites: list[str]) -> ZoneInfo | None:
    """The city's time zone if any of `sites` lies in the key's subtree, else None."""
    cur = await conn.execute(ACCESS, {"sites": sites, "scope": key.site_id})
    row = await cur.fetchone()
    if row is None or not row[0]:
        return None
    return _zone(row[1])


async def site_access(conn: AsyncConnection, key: ApiKey, site_id: str) -> ZoneInfo:
    """The site's time zone; 404 if the site is unknown or outside the key's scope."""
    zone = await _access(conn, key, [site_id])
    if zone is None:
        raise not_found(f"site {site_id!r}")
    return zone


async def meter_access(
    conn: AsyncConnection, key: ApiKey, meter_id: int
) -> tuple[MeterRow, ZoneInfo]:
    """The meter and its time zone; in scope through its site or an enterprise it serves."""
    cur = conn.cursor(row_factory=class_row(MeterRow))
    await cur.execute(METER, {"meter": meter_id, "scope": key.site_id})
    meter = await cur.fetchone()
    if meter is None or not meter.in_scope:
        raise not_found(f"meter {meter_id}")
    return meter, _zone(meter.tz)


async def subtree(conn: AsyncConnection, site_id: str) -> list[SiteRow]:
    """The active sites under `site_id`, itself first."""
    cur = conn.cursor(row_factory=class_row(SiteRow))
    await cur.execute(SUBTREE, (site_id,))
    return await cur.fetchall()


async def key_site_access(
    conn: AsyncConnection, token: str, site_id: str | None
) -> tuple[ApiKey | None, ZoneInfo | None]:
    """The token's active key (None: unknown or revoked) and, if `site_id` lies in its subtree,
    the site's time zone (None: unknown or outside); one round trip. `site_id` None: key only."""
    if site_id is None:
        cur = await conn.execute(KEY, {"digest": digest(token)})
    else:
        cur = await conn.execute(KEY_SITE, {"digest": digest(token), "site": site_id})
    row = await cur.fetchone()
    if row is None:
        return None, None
    key = ApiKey(*row[:KEY_COLUMNS])
    if site_id is None or not row[KEY_COLUMNS]:
        return key, None
    return key, _zone(row[KEY_COLUMNS + 1])


async def key_meter_access(
    conn: AsyncConnection, token: str, meter_id: int
) -> tuple[ApiKey | None, MeterRow | None]:
    """The token's active key (None: unknown or revoked) and the meter, with its newest reading,
    if it lies in the key's scope (None: unknown or outside); one round trip."""
    cur = await conn.execute(KEY_METER, {"digest": digest(token), "meter": meter_id})
    row = await cur.fetchone()
    if row is None:
        return None, None
    key = ApiKey(*row[:KEY_COLUMNS])
    meter = row[KEY_COLUMNS:]
    if meter[0] is None or not meter[8]:
        return key, None
    return key, MeterRow(*meter)


@dataclass(frozen=True, slots=True)
class SiteAccess:
    """The caller's key and the path's site as looked up with it (`site_id` None: not looked up):
    its time zone, or None if the site is unknown or outside the key's scope."""

    key: ApiKey
    site_id: str | None
    site_zone: ZoneInfo | None

    async def zone(self, db: RequestDb, site_id: str) -> ZoneInfo:
        """`site_access` for `site_id`, without a query when it is the site looked up."""
        if site_id != self.site_id:
            return await site_access(await db.conn(), self.key, site_id)
        if self.site_zone is None:
            raise not_found(f"site {site_id!r}")
        return self.site_zone


@dataclass(frozen=True, slots=True)
class MeterAccess:
    """The caller's key and the path's meter as looked up with it (`meter_id` None: not looked
    up): the meter, or None if it is unknown or outside the key's scope. `latest_read`: the
    meter's `latest_*` are from this request's lookup (not from the access cache, which keeps
    them None)."""

    key: ApiKey
    meter_id: int | None
    meter: MeterRow | None
    latest_read: bool = True

    async def row(self, db: RequestDb, meter_id: int) -> tuple[MeterRow, ZoneInfo]:
        """`meter_access` for `meter_id`, without a query when it is the meter looked up."""
        if meter_id != self.meter_id:
            return await meter_access(await db.conn(), self.key, meter_id)
        if self.meter is None:
            raise not_found(f"meter {meter_id}")
        return self.meter, _zone(self.meter.tz)

    async def latest(self, db: RequestDb, meter: MeterRow) -> tuple[datetime | None, float | None]:
        """The newest reading of `meter` (a row from `row`): from the lookup if it read it."""
        if self.latest_read or meter.id != self.meter_id:
            return meter.latest_ts, meter.latest_value
        row = await (await (await db.conn()).execute(LATEST, (meter.id,))).fetchone()
        return (row[0], row[1]) if row else (None, None)
