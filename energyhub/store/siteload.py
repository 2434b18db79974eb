"""Which meters make up each site's load rollup, kept in line with the site tree.

`sites load` calls `sync_members` after it changed the tree: a site whose set of load meters
changed gets its rollup rows rebuilt over the buckets where the added or removed meters have
data (none, for a meter that is new) — history keeps the sum of the meters that make it up now.
A member counts from `counts_from` on (NULL: always): a building's main in a park whose connection
meters are all retired counts only after their readings end (`queries.RETIRED_CONNECTIONS`).
"""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection

from energyhub.store.queries import every_sites_members

DATA_RANGE = """
SELECT min(bucket), max(bucket) + interval '15 minutes' FROM readings_15m
WHERE meter_id = ANY(%s)"""


async def sync_members(conn: AsyncConnection) -> list[str]:
    """Bring `site_load_members` in line with the tree; returns the sites rebuilt."""
    cur = await conn.execute("SELECT site_id, meter_id, counts_from FROM site_load_members")
    stored: dict[str, dict[int, datetime | None]] = {}
    for site_id, meter_id, since in await cur.fetchall():
        stored.setdefault(site_id, {})[int(meter_id)] = since
    sites = [row[0] for row in await (await conn.execute("SELECT id FROM sites")).fetchall()]
    every = await every_sites_members(conn)
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
