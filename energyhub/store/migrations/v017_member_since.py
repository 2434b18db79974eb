"""Version 17: a site's load member can count from a time on (`site_load_members.counts_from`).

A park measured at its connection by a main meter that is then retired (gone from the site file)
has that meter's readings as its history, and its buildings' mains as its load after: each main
counts in the park's and the city's load only from the end of the retired meter's readings
(`energyhub.store.queries.RETIRED_CONNECTIONS`). Before, the history counted both, the park twice.

The members are brought in line with the stored tree here (version 7 left that to this version),
which rebuilds the load rollups of the sites whose members or times changed.
"""

from __future__ import annotations

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


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    if REFRESH_SITE_LOAD_SINCE == REFRESH_SITE_LOAD:
        raise AssertionError("v017: the site load refresh of v011 has no members filter to extend")
    await conn.execute("ALTER TABLE site_load_members ADD COLUMN counts_from timestamptz")
    await conn.execute(REFRESH_SITE_LOAD_SINCE)
    # Imported here: it reaches pandas (store.queries), which the processes that only check the
    # schema version (an ingest worker) must not carry.
    from energyhub.store.siteload import sync_members

    await sync_members(conn)


MIGRATION = Migration(17, "site load members that count from a time on", apply)
