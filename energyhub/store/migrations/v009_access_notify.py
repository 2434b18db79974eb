"""Version 9: every change to `api_keys`, `sites`, `meters` or `enterprise_meters` NOTIFYs
`energyhub_access`.

An API process keeps keys and scope answers only while it LISTENs on that channel
(energyhub/api/access_cache.py): a key revoked, a site moved or deactivated, by the `keys` and
`sites` commands or by hand in SQL, empties every process's cache when the change commits.
(The newest readings live in `meter_latest`, which is not cached.)
"""

from __future__ import annotations

from psycopg import AsyncConnection

from energyhub.store.migrations.base import Migration, MigrationContext

CHANNEL = "energyhub_access"

NOTIFY_FUNCTION = f"""
CREATE OR REPLACE FUNCTION energyhub_notify_access() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
    RETURN NULL;
END
$$"""

TRIGGER = """
CREATE TRIGGER {table}_notify_access
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
FOR EACH STATEMENT EXECUTE FUNCTION energyhub_notify_access()"""


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    await conn.execute(NOTIFY_FUNCTION)
    for table in ("api_keys", "sites", "meters", "enterprise_meters"):
        await conn.execute(TRIGGER.format(table=table))


MIGRATION = Migration(9, "NOTIFY energyhub_access on key and site changes", apply)
