"""Version 17: a site's load member can count from a time on (`site_load_members.counts_from`).

A park measured at its connection by a main meter that is then retired (gone from the site file)
has that meter's readings as its history, and its buildings' mains as its load after: each main
counts in the park's and the city's load only from the end of the retired meter's readings
(`energyhub.store.queries.RETIRED_CONNECTIONS`). Before, the history counted both, the park twice.

The members are brought in line with the stored tree here (version 7 left that to this version),
which rebuilds the load rollups of the sites whose members or times changed. That step is frozen
in this module, as the rule stood when this version was written: a later change to the
application's members (`energyhub.store.siteload.sync_members`) must not change what upgrading an
old database through this version does.
"""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection

from energyhub.store.migrations.base import Migration, MigrationContext
from energyhub.store.migrations.v011_interval_energy import REFRESH_SITE_LOAD

MEMBERS_FILTER = """
              AND ($3 IS NULL OR members.site_id = ANY($3))"""
SINCE_FILTER = (
    MEMBERS_FILTER
    + """
              AND (members.counts_from IS NULL OR p.bucket >= members.counts_from)"""
)

REFRESH_SITE_LOAD_SINCE = REFRESH_SITE_LOAD.replace(MEMBERS_FILTER, SINCE_FILTER)
"""Version 11's refresh, each member's buckets from its `counts_from` on."""

LOAD_CARRIERS = ["electricity", "heat", "cooling", "gas"]

PARK_MAINS = """
SELECT DISTINCT p.id, coalesce(p.attributes->>'main_meter', 'connection') = 'connection'
FROM sites AS p JOIN meters AS pm ON pm.site_id = p.id
WHERE p.kind = 'park' AND pm.active AND pm.carrier = 'electricity'
  AND pm.quantity IN ('power_kw', 'energy_kwh')
  AND pm.parent_meter_id IS NULL AND pm.asset_id IS NULL"""

RETIRED_CONNECTIONS = f"""
SELECT p.id, date_bin('15 minutes', max(l.ts), '2000-01-01 00:00:00+00') + interval '15 minutes'
FROM sites AS p
JOIN meters AS pm ON pm.site_id = p.id
JOIN meter_latest AS l ON l.meter_id = pm.id
WHERE p.kind = 'park' AND NOT pm.active AND pm.carrier = 'electricity'
  AND pm.quantity IN ('power_kw', 'energy_kwh')
  AND pm.parent_meter_id IS NULL AND pm.asset_id IS NULL
  AND coalesce(p.attributes->>'main_meter', 'connection') = 'connection'
  AND p.id NOT IN (SELECT id FROM ({PARK_MAINS}) AS mains (id, connection))
GROUP BY p.id"""  # noqa: S608 (constants)

EVERY_SITES_MEMBERS = f"""
WITH RECURSIVE subtree (root, id) AS (
    SELECT id, id FROM sites
    UNION ALL
    SELECT subtree.root, s.id FROM sites AS s JOIN subtree ON s.parent_id = subtree.id
)
SELECT subtree.root, m.id,
       CASE WHEN m.site_id <> subtree.root AND m.carrier = 'electricity' THEN rc.until END
FROM meters AS m JOIN subtree ON m.site_id = subtree.id
LEFT JOIN sites AS b ON b.id = m.site_id AND b.kind = 'building'
LEFT JOIN ({RETIRED_CONNECTIONS}) AS rc (park, until) ON rc.park = b.parent_id
WHERE m.quantity IN ('power_kw', 'energy_kwh')
  AND (m.carrier = 'pv'
       OR (m.carrier = ANY(%(carriers)s) AND m.parent_meter_id IS NULL AND m.asset_id IS NULL))
  AND NOT (m.site_id <> subtree.root AND m.carrier = 'electricity' AND m.site_id IN (
      SELECT b.id FROM sites AS b
      WHERE b.kind = 'building' AND b.parent_id IN (
          SELECT id FROM ({PARK_MAINS}) AS mains (id, connection) WHERE connection)))
UNION
SELECT enterprise_id, meter_id, NULL::timestamptz FROM enterprise_meters"""  # noqa: S608 (constants)
"""(site, meter, counts from) of every site's load members as version 17 defined them: top-level
energy meters that do not measure an asset, and PV, less the buildings' electricity in a park
measured at its connection (or, once its connection meters are all retired, until their end);
an enterprise is the sum of its own sub-meters."""

DATA_RANGE = """
SELECT min(bucket), max(bucket) + interval '15 minutes' FROM readings_15m
WHERE meter_id = ANY(%s)"""


async def _members(
    conn: AsyncConnection, query: str, **params: object
) -> dict[str, dict[int, datetime | None]]:
    cur = await conn.execute(query, params)
    result: dict[str, dict[int, datetime | None]] = {}
    for site_id, meter_id, since in await cur.fetchall():
        result.setdefault(site_id, {})[int(meter_id)] = since
    return result


async def sync_members(conn: AsyncConnection) -> list[str]:
    """Bring `site_load_members` in line with the tree as version 17 defined it; the sites whose
    load rollups were rebuilt."""
    stored = await _members(conn, "SELECT site_id, meter_id, counts_from FROM site_load_members")
    every = await _members(conn, EVERY_SITES_MEMBERS, carriers=LOAD_CARRIERS)
    sites = [row[0] for row in await (await conn.execute("SELECT id FROM sites")).fetchall()]
    rebuilt = []
    for site_id in sites:
        wanted = every.get(site_id, {})
        had = stored.get(site_id, {})
        if wanted == had:
            continue
        await conn.execute(
            "DELETE FROM site_load_members WHERE site_id = %s AND NOT meter_id = ANY(%s)",
            (site_id, sorted(wanted)),
        )
        changed = sorted(
            m
            for m in wanted.keys() | had.keys()
            if m not in wanted or m not in had or had[m] != wanted[m]
        )
        upsert = [m for m in changed if m in wanted]
        await conn.execute(
            "INSERT INTO site_load_members (site_id, meter_id, counts_from) "
            "SELECT %s, meter_id, counts_from "
            "FROM unnest(%s::integer[], %s::timestamptz[]) AS u (meter_id, counts_from) "
            "ON CONFLICT (site_id, meter_id) DO UPDATE SET counts_from = excluded.counts_from",
            (site_id, upsert, [wanted[m] for m in upsert]),
        )
        lo, hi = await (await conn.execute(DATA_RANGE, (changed,))).fetchone() or (None, None)
        if lo is not None:
            await conn.execute(
                "SELECT energyhub_refresh_site_load(%s, %s, %s)", (lo, hi, [site_id])
            )
            rebuilt.append(site_id)
    return rebuilt


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    if REFRESH_SITE_LOAD_SINCE == REFRESH_SITE_LOAD:
        raise AssertionError("v017: the site load refresh of v011 has no members filter to extend")
    await conn.execute("ALTER TABLE site_load_members ADD COLUMN counts_from timestamptz")
    await conn.execute(REFRESH_SITE_LOAD_SINCE)
    await sync_members(conn)


MIGRATION = Migration(17, "site load members that count from a time on", apply)
