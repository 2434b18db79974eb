"""Version 16: a setpoint keeps the connection's import limit it carried (`import_limit_kw`), so
plan vs actual can show what the site's local controller was told to hold at each step.

Rows written before this version, and setpoints sent without a limit, have NULL.
"""

from __future__ import annotations

from psycopg import AsyncConnection

from energyhub.store.migrations.base import Migration, MigrationContext


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    await conn.execute("ALTER TABLE setpoints ADD COLUMN import_limit_kw double precision")


MIGRATION = Migration(16, "setpoints: the import limit they carried", apply)
