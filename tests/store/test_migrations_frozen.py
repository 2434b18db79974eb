"""A migration is frozen: it imports no live rule from the application, its SQL is what it was
written with, and the latest migrations install what the application's live rule says."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

from psycopg import AsyncConnection

from energyhub.store import energy
from energyhub.store.migrations import v011_interval_energy as v011

MIGRATIONS_DIR = Path(v011.__file__).parent

ALLOWED_IMPORTS = {"energyhub.store.db", "energyhub.store.migrations"}
"""What a migration may import from energyhub: the connection's backend and older migrations."""

KNOWN_LIVE = {("v001_initial.py", "energyhub.store.maintenance")}
"""v001 makes the first partitions with the runtime chore that keeps making them (no rule)."""

V011_SHA256 = {
    "STEP_RULE[0]": "44938ede6df7af17ebe1fce006659641c17dee7a478d79fe8ccd2b2e1478429d",
    "STEP_RULE[1]": "06b5dc02f91780e8903dcb6219b7c3c522d14cf2da35177f525409d9e3edb7a2",
    "BUCKET_TERMS": "8880d066dbc06be7fa94af17e12acb21824a356fbe30e915f19f266858892a64",
}
"""The digests of v011's frozen SQL as this version installs it (energy rule of 2026-12-06)."""


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_no_migration_imports_a_live_rule() -> None:
    live: list[str] = []
    for path in sorted(MIGRATIONS_DIR.glob("v*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("energyhub"):
                module = node.module or ""
                allowed = any(module == a or module.startswith(a + ".") for a in ALLOWED_IMPORTS)
                if not allowed and (path.name, module) not in KNOWN_LIVE:
                    live.append(f"{path.name}: from {module} import ...")
    assert live == []


def test_v011_sql_is_what_it_was_written_with() -> None:
    frozen = {
        "STEP_RULE[0]": v011.STEP_RULE[0],
        "STEP_RULE[1]": v011.STEP_RULE[1],
        "BUCKET_TERMS": v011.BUCKET_TERMS,
    }
    assert len(v011.STEP_RULE) == 2
    assert {name: _sha(text) for name, text in frozen.items()} == V011_SHA256
    assert v011.BUCKET_TERMS in v011.REFRESH_SITE_LOAD


async def test_the_installed_rule_is_the_live_rule(conn: AsyncConnection) -> None:
    """A change to `energyhub.store.energy` needs a migration that installs it: until one does,
    the functions a migrated database has differ from the live text and this fails."""
    for statement in energy.STEP_RULE:
        name = statement.split("FUNCTION ", 1)[1].split("(", 1)[0]
        cur = await conn.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", (name,))
        rows = await cur.fetchall()
        assert [row[0] for row in rows] == [statement.split("$$")[1]], name
