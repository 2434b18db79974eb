"""Grafana's read-only role reads the telemetry but never the API keys.

The role is made by deploy/timescaledb/grafana-reader.sh, as at the database's first start (before
`energyhub db migrate`, so the default privileges reach api_keys and migration 8 takes them back)
or later, on a database that already has the table (the script's own revoke).
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import errors, sql

from energyhub.api.keys import create_key
from energyhub.sites import load_site
from energyhub.store.db import connect
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from tests.conftest import REPO
from tests.deploy.test_grafana_reader import _run_script as run_reader_script


async def _migrate_with_a_key(url: str) -> None:
    async with connect(url) as conn:
        await migrate(conn)
        await sync_site(conn, load_site(REPO / "examples" / "expo-park.yaml"))
        await create_key(conn, "admin", "shanghai", "grafana must not see this")


@pytest.mark.parametrize("script", ["before-migrate", "after-migrate"])
async def test_grafana_reader_cannot_read_api_keys(store_url: str, script: str) -> None:
    reader = f"grafana_reader_{uuid.uuid4().hex[:8]}"
    if script == "before-migrate":
        run_reader_script(store_url, reader)
        await _migrate_with_a_key(store_url)
    else:
        await _migrate_with_a_key(store_url)
        run_reader_script(store_url, reader)
    try:
        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(reader)))
            try:
                assert conn.execute("SELECT count(*) FROM sites").fetchone() != (0,)
                conn.execute("SELECT count(*) FROM readings")
                for query in ("SELECT count(*) FROM api_keys", "SELECT prefix FROM api_keys"):
                    with pytest.raises(errors.InsufficientPrivilege):
                        conn.execute(query)
            finally:  # the TimescaleDB test server's one session outlives this connection
                conn.execute("RESET ROLE")
            # The owner (the API, `energyhub keys`) still reads and writes the table.
            assert conn.execute("SELECT count(*) FROM api_keys").fetchone() == (1,)
    finally:
        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(reader)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(reader)))
