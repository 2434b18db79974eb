"""Version 8: `api_keys` readable by its owner alone.

Grafana's read-only role (deploy/timescaledb/grafana-reader.sh) reads every table through default
privileges, and Grafana runs whatever SQL a dashboard editor types: the key digests, prefixes,
roles and scopes are none of its business. Every privilege on the table that anyone but its owner
holds is revoked (PUBLIC's too); the API and the `keys` commands connect as the owner.
"""

from __future__ import annotations

from psycopg import AsyncConnection

from energyhub.store.migrations.base import Migration, MigrationContext

REVOKE_FROM_ALL_BUT_OWNER = """
DO $$
DECLARE
    grantee regrole;
BEGIN
    REVOKE ALL ON TABLE api_keys FROM PUBLIC;
    FOR grantee IN
        SELECT DISTINCT acl.grantee::regrole
        FROM pg_class AS c, aclexplode(c.relacl) AS acl
        WHERE c.oid = 'api_keys'::regclass AND acl.grantee NOT IN (0, c.relowner)
    LOOP
        EXECUTE format('REVOKE ALL ON TABLE api_keys FROM %s', grantee);
    END LOOP;
END
$$"""


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    await conn.execute(REVOKE_FROM_ALL_BUT_OWNER)


MIGRATION = Migration(8, "api_keys private to its owner", apply)
