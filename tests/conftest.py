"""Shared fixtures: a fresh database per test on the machine's PostgreSQL, and TimescaleDB.

The plain path runs against the real PostgreSQL (ENERGYHUB_TEST_PG_URL, default the local server),
each test in a database of its own. The TimescaleDB path runs against the WebAssembly TimescaleDB
test server of tools/timescaledb-wasm (one connection at a time), reset between tests.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from energyhub.store.embedded import free_port

REPO = Path(__file__).resolve().parent.parent
TSDB_TOOL = REPO / "tools" / "timescaledb-wasm"
TSDB_START_TIMEOUT_S = 120.0
ADMIN_URL = os.environ.get("ENERGYHUB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


TSDB_FIXTURES = {"tsdb_server", "tsdb_url"}


def _uses_tsdb(item: pytest.Item) -> bool:
    if TSDB_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("store_url") == "timescaledb"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test` runs two xdist workers with `--dist loadgroup`; a group stays on one worker, one
    test after another. The TimescaleDB tests share one test server (it takes one connection at a
    time); `timed` and system tests have deadlines in real or simulated time that two of them side
    by side on two cores could miss, so they run one after another too."""
    for item in items:
        if _uses_tsdb(item):
            item.add_marker(pytest.mark.xdist_group("timescaledb"))
        elif item.get_closest_marker("timed") or item.get_closest_marker("system"):
            item.add_marker(pytest.mark.xdist_group("timed"))


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty database on the real PostgreSQL, dropped after the test."""
    name = f"eh_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(ADMIN_URL, name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def tsdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The TimescaleDB (WebAssembly) test server of tools/timescaledb-wasm for the whole session."""
    if not (TSDB_TOOL / "node_modules" / "@unni-craftsman" / "pglite").is_dir():
        pytest.fail(
            f"the TimescaleDB test server is not installed in {TSDB_TOOL}: run "
            "`bash scripts/services.sh` (or `npm ci` in that folder)"
        )
    port = free_port()
    log = tmp_path_factory.mktemp("tsdb") / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            ["node", "server.mjs", "memory://", str(port)],
            cwd=TSDB_TOOL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + TSDB_START_TIMEOUT_S
        while "READY" not in log.read_text():
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"TimescaleDB test server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield f"postgresql://postgres:x@127.0.0.1:{port}/postgres"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


DROP_ENERGYHUB_OBJECTS = """
SELECT c.relname, c.relkind FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
  AND NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.objid = c.oid AND d.deptype = 'e')
"""


def reset_tsdb(url: str) -> None:
    """Drop every energyhub object (the extension stays: it cannot be reloaded in one backend)."""
    with psycopg.connect(url, autocommit=True) as conn:
        relations = conn.execute(DROP_ENERGYHUB_OBJECTS).fetchall()
        for name, kind in sorted(relations, key=lambda r: r[1] != "v"):  # views before tables
            statement = "DROP MATERIALIZED VIEW" if kind == "v" else "DROP TABLE"
            conn.execute(sql.SQL(statement + " IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        functions = conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc AS p WHERE p.proname LIKE 'energyhub%%'"
        ).fetchall()
        for (signature,) in functions:
            conn.execute(sql.SQL("DROP FUNCTION IF EXISTS " + signature))


@pytest.fixture
def tsdb_url(tsdb_server: str) -> str:
    """The TimescaleDB test server, emptied of energyhub objects."""
    reset_tsdb(tsdb_server)
    return tsdb_server


@pytest.fixture(params=["postgres", "timescaledb"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Run the test once on plain PostgreSQL and once on TimescaleDB."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(request.getfixturevalue("tsdb_url"))


@pytest.fixture
def example_site_path() -> Path:
    return REPO / "examples" / "expo-park.yaml"
