"""Version 5: hourly grid carbon intensity series for carbon accounting (both backends alike)."""

from __future__ import annotations

from psycopg import AsyncConnection

from energyhub.store.migrations.base import Migration, MigrationContext

STATEMENTS = [
    """CREATE TABLE grid_intensity (
        series text NOT NULL,
        ts timestamptz NOT NULL,
        kg_per_kwh double precision NOT NULL CHECK (kg_per_kwh >= 0),
        PRIMARY KEY (series, ts))""",
]


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    for statement in STATEMENTS:
        await conn.execute(statement)


MIGRATION = Migration(5, "grid carbon intensity series", apply)
