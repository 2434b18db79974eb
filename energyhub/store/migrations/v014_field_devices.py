"""Version 14: `field_devices`, one row per field device the ingest hears of and whether it is up.

Sparkplug B edge nodes and devices are marked online by their birth certificates and offline by
their death (NDEATH, DDEATH) the moment it arrives, so the silence alert and `energyhub devices`
need not wait for a meter's readings to age.
"""

from __future__ import annotations

from psycopg import AsyncConnection

from energyhub.store.migrations.base import Migration, MigrationContext

FIELD_DEVICES = """
CREATE TABLE field_devices (
    kind text NOT NULL,
    key text NOT NULL,
    online boolean NOT NULL,
    changed_at timestamptz NOT NULL,
    detail text NOT NULL DEFAULT '',
    PRIMARY KEY (kind, key)
)"""


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    await conn.execute(FIELD_DEVICES)


MIGRATION = Migration(14, "field_devices: which field devices are online", apply)
