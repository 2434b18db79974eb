"""Every distinct site file loaded, with when: the change history a carbon verifier reads
(`energyhub carbon disclose`). A load that changes nothing adds no version."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from energyhub.sites import SiteFile

LATEST = "SELECT sha256 FROM site_file_versions ORDER BY id DESC LIMIT 1"
INSERT = "INSERT INTO site_file_versions (sha256, content) VALUES (%s, %s)"
IN_FORCE = """
SELECT id, loaded_at, sha256, content FROM site_file_versions
WHERE loaded_at < %(end)s
  AND id >= coalesce((SELECT max(id) FROM site_file_versions WHERE loaded_at <= %(start)s), 0)
ORDER BY id"""


@dataclass(frozen=True, slots=True)
class SiteVersion:
    id: int
    loaded_at: datetime
    sha256: str
    content: dict[str, Any]


def canonical(site: SiteFile) -> tuple[str, dict[str, Any]]:
    """The site file as JSON with sorted keys, and its SHA-256."""
    content = site.model_dump(mode="json", by_alias=True)
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest(), content


async def record_version(conn: AsyncConnection, site: SiteFile) -> bool:
    """Store the site file unless it is the latest version already; True if stored."""
    digest, content = canonical(site)
    cur = await conn.execute(LATEST)
    row = await cur.fetchone()
    if row is not None and row[0] == digest:
        return False
    await conn.execute(INSERT, (digest, Jsonb(content)))
    return True


async def versions_in(conn: AsyncConnection, start: datetime, end: datetime) -> list[SiteVersion]:
    """The version in force at `start` (if any) and every one loaded before `end`, in order."""
    cur = await conn.execute(IN_FORCE, {"start": start, "end": end})
    return [SiteVersion(int(r[0]), r[1], str(r[2]), dict(r[3])) for r in await cur.fetchall()]
