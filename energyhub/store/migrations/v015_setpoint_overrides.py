"""Version 15: a setpoint keeps what the plan asked (`planned_p_kw`) and, where the scheduler's
peak guard sent something else, why (`override`), so plan vs actual can explain the difference.

Rows written before this version have neither (`planned_p_kw` NULL: taken as `p_kw`).
"""

from __future__ import annotations

from psycopg import AsyncConnection

from energyhub.store.migrations.base import Migration, MigrationContext

STATEMENTS = [
    "ALTER TABLE setpoints ADD COLUMN planned_p_kw double precision",
    "ALTER TABLE setpoints ADD COLUMN override text",
]


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    for statement in STATEMENTS:
        await conn.execute(statement)


MIGRATION = Migration(15, "setpoints: planned_p_kw and the peak guard's override", apply)
