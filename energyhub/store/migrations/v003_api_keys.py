"""Version 3: API keys, stored as SHA-256 digests, each with a role and a site scope."""

from __future__ import annotations

from psycopg import AsyncConnection

from energyhub.store.migrations.base import Migration, MigrationContext

STATEMENTS = [
    """CREATE TABLE api_keys (
        id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        key_sha256 bytea NOT NULL UNIQUE,
        prefix text NOT NULL,
        role text NOT NULL CHECK (role IN ('viewer', 'manager', 'operator', 'admin')),
        site_id text NOT NULL REFERENCES sites (id),
        name text,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz)""",
]


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    for statement in STATEMENTS:
        await conn.execute(statement)


MIGRATION = Migration(3, "API keys", apply)
