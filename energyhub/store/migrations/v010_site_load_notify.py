"""Version 10: every change to the per-site load rollups NOTIFYs `energyhub_site_load`.

The payload is the first and last bucket changed, as epoch seconds (`"<first> <last>"`; `"all"`
for a TRUNCATE). On plain PostgreSQL a site's 15-min or hourly load is read from these tables
alone, so an API process that hears every change can keep such an answer until a change touches
its window (energyhub/api/cache.py), not just for a fixed second.
"""

from __future__ import annotations

from psycopg import AsyncConnection

from energyhub.store.migrations.base import Migration, MigrationContext

CHANNEL = "energyhub_site_load"
"""The channel; NOTIFY_FUNCTION spells it out."""

NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION energyhub_notify_site_load() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    first_bucket double precision;
    last_bucket double precision;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('energyhub_site_load', 'all');
        RETURN NULL;
    END IF;
    SELECT extract(epoch FROM min(bucket)), extract(epoch FROM max(bucket))
    INTO first_bucket, last_bucket FROM changed;
    IF first_bucket IS NOT NULL THEN
        PERFORM pg_notify('energyhub_site_load', first_bucket::text || ' ' || last_bucket::text);
    END IF;
    RETURN NULL;
END
$$"""

TRIGGERS = (
    ("insert", "INSERT", "REFERENCING NEW TABLE AS changed"),
    ("update", "UPDATE", "REFERENCING NEW TABLE AS changed"),
    ("delete", "DELETE", "REFERENCING OLD TABLE AS changed"),
    ("truncate", "TRUNCATE", ""),
)
"""One trigger per event: PostgreSQL allows transition tables only on single-event triggers."""


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    await conn.execute(NOTIFY_FUNCTION)
    for table in ("site_load_15m", "site_load_1h"):
        for name, event, transition in TRIGGERS:
            await conn.execute(
                f"CREATE TRIGGER {table}_notify_{name} AFTER {event} ON {table} {transition} "
                "FOR EACH STATEMENT EXECUTE FUNCTION energyhub_notify_site_load()"
            )


MIGRATION = Migration(10, "NOTIFY energyhub_site_load on per-site load changes", apply)
