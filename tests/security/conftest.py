"""A migrated database with the example site and an admin key, for the API's security tests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from energyhub.api.keys import create_key
from energyhub.sites import load_site
from energyhub.store.db import connect
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from tests.conftest import REPO, CloneDatabase

SITE_FILE = REPO / "examples" / "expo-park.yaml"


@dataclass(frozen=True)
class KeyedDatabase:
    url: str
    token: str
    """The city admin's key."""


async def _build(url: str) -> str:
    async with connect(url) as conn:
        await migrate(conn)
        await sync_site(conn, load_site(SITE_FILE))
        _, token = await create_key(conn, "admin", "shanghai", "security test")
    return token


@pytest.fixture
async def keyed_db(clone_database: CloneDatabase[str]) -> KeyedDatabase:
    """A copy of a template: migrated, the example site loaded, the admin key created."""
    url, token = await clone_database("security:example-site+admin-key", _build)
    return KeyedDatabase(url, token)
