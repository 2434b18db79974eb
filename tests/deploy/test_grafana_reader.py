"""deploy/timescaledb/grafana-reader.sh: Grafana's role reads what migrations create later, no more.

The script runs with psql as the timescaledb image runs it at first start, before `energyhub db
migrate`; the role's privileges are then checked with SET ROLE (the TimescaleDB test server logs
everyone in as postgres).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import errors, sql

from energyhub.sites import load_site
from energyhub.store.db import connect
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from tests.conftest import REPO

READABLE = (
    "sites", "meters", "readings", "readings_15m", "readings_1h", "meter_latest", "rejected",
    "enterprise_meters", "plans", "plan_steps",
)  # fmt: skip


def _run_script(url: str, reader: str) -> None:
    parts = urlsplit(url)
    environment = {
        "PATH": os.environ["PATH"],
        "PGHOST": parts.hostname or "127.0.0.1",
        "PGPORT": str(parts.port or 5432),
        "PGPASSWORD": parts.password or "",
        "POSTGRES_USER": parts.username or "postgres",
        "POSTGRES_DB": parts.path.lstrip("/"),
        "GRAFANA_DB_USER": reader,
        "GRAFANA_DB_PASSWORD": "reader-pw",
    }
    script = REPO / "deploy" / "timescaledb" / "grafana-reader.sh"
    done = subprocess.run(
        ["sh", str(script)], env=environment, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


async def test_grafana_reader_selects_but_cannot_write(store_url: str) -> None:
    reader = f"grafana_reader_{uuid.uuid4().hex[:8]}"
    _run_script(store_url, reader)
    try:
        async with connect(store_url) as conn:
            await migrate(conn)
            await sync_site(conn, load_site(REPO / "examples" / "expo-park.yaml"))
        with psycopg.connect(store_url, autocommit=True) as conn:  # chunks, rollups: as the owner
            conn.execute(
                "INSERT INTO readings (ts, meter_id, value) SELECT now() - interval '1 hour' * i, "
                "min(id), i FROM meters, generate_series(1, 2) AS i GROUP BY i"
            )
            # both paths keep their rollups as tables since schema version 11
            conn.execute("SELECT energyhub_refresh_rollups(now() - interval '1 day', now())")
        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(reader)))
            try:
                for table in READABLE:
                    conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
                assert conn.execute("SELECT count(*) FROM readings").fetchone() == (2,)
                assert conn.execute("SELECT sum(n) FROM readings_15m").fetchone() == (2,)
                with pytest.raises(errors.InsufficientPrivilege):
                    conn.execute("UPDATE sites SET name = 'x'")
                with pytest.raises(errors.InsufficientPrivilege):
                    conn.execute("DELETE FROM readings")
            finally:  # the TimescaleDB test server's one session outlives this connection
                conn.execute("RESET ROLE")
    finally:
        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(reader)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(reader)))
