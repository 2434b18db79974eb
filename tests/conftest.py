"""Shared fixtures: a fresh database per test on the machine's PostgreSQL, and TimescaleDB.

The plain path runs against the real PostgreSQL (ENERGYHUB_TEST_PG_URL, default the local server),
each test in a database of its own. The TimescaleDB path runs against the WebAssembly TimescaleDB
test server of tools/timescaledb-wasm (one connection at a time), reset between tests.
"""

from __future__ import annotations

import copy
import hashlib
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg import sql

from energyhub.sites import SiteFile
from energyhub.store.db import connect
from energyhub.store.embedded import free_port
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site

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


def create_database(name: str, template: str | None = None) -> None:
    """CREATE DATABASE, as a copy of `template` if given (it must have no session open: a build's
    last connection can take a moment to leave, so a busy template is retried for a few seconds)."""
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    for attempt in range(50):
        try:
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(statement)
            return
        except psycopg.errors.ObjectInUse:
            if attempt == 49:
                raise
            time.sleep(0.1)


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


class DatabaseDropper:
    """Drops test databases on a thread of its own: DROP DATABASE waits for a checkpoint (1-2 s on
    a busy server), which the next test need not wait for. The session waits for the last drop."""

    def __init__(self) -> None:
        self._names: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.failures: list[str] = []

    def drop(self, name: str) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="drop-databases", daemon=True)
            self._thread.start()
        self._names.put(name)

    def _run(self) -> None:
        while (name := self._names.get()) is not None:
            try:
                drop_database(name)
            except psycopg.Error as exc:
                self.failures.append(f"{name}: {exc}")

    def finish(self) -> None:
        if self._thread is not None:
            self._names.put(None)
            self._thread.join()
            self._thread = None
        for failure in self.failures:
            print(f"tests/conftest.py: could not drop database {failure}", file=sys.stderr)


DROPPER = DatabaseDropper()


def pytest_sessionfinish() -> None:
    DROPPER.finish()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty database on the real PostgreSQL, dropped after the test."""
    name = f"eh_test_{uuid.uuid4().hex[:12]}"
    create_database(name)
    try:
        yield _with_database(ADMIN_URL, name)
    finally:
        DROPPER.drop(name)


T = TypeVar("T")


class DatabaseTemplates:
    """Databases built once per session (per xdist worker) and copied for each test with
    `CREATE DATABASE … TEMPLATE` instead of building them again: the API tests' world (readings,
    rollups, keys, solved plans) took 3-4 s to build per test on the busy test machine; a copy of the
    migrated example site took 0.46 s there (migrating and loading it, 0.51 s).

    A template is named by a key that must say everything its build does (the site's content, the
    data written); the build's return value (ids, tokens) is kept with it and deep-copied per test."""

    def __init__(self) -> None:
        self._built: dict[str, tuple[str, Any]] = {}

    async def template(self, key: str, build: Callable[[str], Awaitable[T]]) -> tuple[str, T]:
        """The template database for `key`, built by `build(url)` the first time it is asked for."""
        if key not in self._built:
            name = f"eh_tmpl_{uuid.uuid4().hex[:12]}"
            create_database(name)
            try:
                value = await build(_with_database(ADMIN_URL, name))
            except BaseException:
                drop_database(name)
                raise
            self._built[key] = (name, value)
        name, value = self._built[key]
        return name, copy.deepcopy(value)

    async def clone(self, key: str, build: Callable[[str], Awaitable[T]]) -> tuple[str, str, T]:
        """A new database copied from the template `key`: its name, its URL, the build's value.
        The caller drops it (`DROPPER.drop(name)`)."""
        template, value = await self.template(key, build)
        name = f"eh_test_{uuid.uuid4().hex[:12]}"
        create_database(name, template)
        return name, _with_database(ADMIN_URL, name), value

    def drop_all(self) -> None:
        for name, _ in self._built.values():
            DROPPER.drop(name)
        self._built.clear()


@pytest.fixture(scope="session")
def database_templates() -> Iterator[DatabaseTemplates]:
    templates = DatabaseTemplates()
    try:
        yield templates
    finally:
        templates.drop_all()


CloneDatabase = Callable[[str, Callable[[str], Awaitable[T]]], Awaitable[tuple[str, T]]]


@pytest.fixture
def clone_database(database_templates: DatabaseTemplates) -> Iterator[CloneDatabase[Any]]:
    """`await clone_database(key, build)`: a new database copied from the template `key` (built by
    `build(url)` once per session), and the build's value; dropped after the test."""
    made: list[str] = []

    async def clone(key: str, build: Callable[[str], Awaitable[T]]) -> tuple[str, T]:
        name, url, value = await database_templates.clone(key, build)
        made.append(name)
        return url, value

    try:
        yield clone
    finally:
        for name in made:
            DROPPER.drop(name)


def site_key(site: SiteFile | None) -> str:
    """A template key for a migrated database with `site` loaded (None: the schema only)."""
    if site is None:
        return "migrated"
    return "site:" + hashlib.sha256(site.model_dump_json().encode()).hexdigest()


async def migrate_and_load(url: str, site: SiteFile | None) -> None:
    async with connect(url) as conn:
        await migrate(conn)
        if site is not None:
            await sync_site(conn, site)


@pytest.fixture
def site_database(
    clone_database: CloneDatabase[None],
) -> Callable[[SiteFile | None], Awaitable[str]]:
    """`await site_database(site)`: a new migrated database with `site` loaded (None: the schema
    only), copied from a template; dropped after the test."""

    async def new(site: SiteFile | None) -> str:
        async def build(url: str) -> None:
            await migrate_and_load(url, site)

        url, _ = await clone_database(site_key(site), build)
        return url

    return new


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
