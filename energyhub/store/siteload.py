"""Which meters make up each site's load rollup, kept in line with the site tree.

`sites load` calls `sync_members` after it changed the tree: a site whose set of load meters
changed gets its rollup rows rebuilt over the buckets where the added or removed meters have
data (none, for a meter that is new) — history keeps the sum of the meters that make it up now.
"""

from __future__ import annotations

from psycopg import AsyncConnection

from energyhub.store.queries import every_sites_meter_ids

DATA_RANGE = """
SELECT min(bucket), max(bucket) + interval '15 minutes' FROM readings_15m
WHERE meter_id = ANY(%s)"""


async def sync_members(conn: AsyncConnection) -> list[str]:
    """Bring `site_load_members` in line with the tree; returns the sites rebuilt."""
    cur = await conn.execute("SELECT site_id, meter_id FROM site_load_members")
    stored: dict[str, set[int]] = {}
    for site_id, meter_id in await cur.fetchall():
        stored.setdefault(site_id, set()).add(int(meter_id))
    sites = [row[0] for row in await (await conn.execute("SELECT id FROM sites")).fetchall()]
    every = await every_sites_meter_ids(conn)
    rebuilt = []
    for site_id in sites:
        wanted = every.get(site_id, set())
        had = stored.get(site_id, set())
        if wanted == had:
            continue
        await conn.execute(
            "DELETE FROM site_load_members WHERE site_id = %s AND NOT meter_id = ANY(%s)",
            (site_id, sorted(wanted)),
        )
        await conn.execute(
            "INSERT INTO site_load_members (site_id, meter_id) "
            "SELECT %s, unnest(%s::integer[]) ON CONFLICT DO NOTHING",
            (site_id, sorted(wanted - had)),
        )
        lo, hi = await (await conn.execute(DATA_RANGE, (sorted(wanted ^ had),))).fetchone() or (
            None,
            None,
        )
        if lo is not None:
            await conn.execute(
                "SELECT energyhub_refresh_site_load(%s, %s, %s)", (lo, hi, [site_id])
            )
            rebuilt.append(site_id)
    return rebuilt
