"""API keys: a random token shown once, stored as its SHA-256 digest with a role and a site scope.

The token carries 256 random bits, so a fast digest is enough: nobody can search that space, and
unlike a password hash (bcrypt, argon2) SHA-256 lets each request find its key by an indexed
equality lookup in microseconds. The token itself is never stored or logged; `prefix` (its first
characters) lets people tell keys apart.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

from energyhub.errors import EnergyhubError

Role = Literal["viewer", "manager", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "manager", "operator", "admin")
RANK: dict[Role, int] = {role: rank for rank, role in enumerate(ROLES)}
TOKEN_PREFIX = "ehk_"  # noqa: S105  (a public marker that makes keys recognizable)
TOKEN_BYTES = 32
PREFIX_CHARS = 12
"""Characters of the token kept in clear (`ehk_` and 8 random ones) to tell keys apart."""

COLUMNS = sql.SQL("id, prefix, role, site_id, name, created_at, revoked_at")


class ApiKeyError(EnergyhubError):
    """A key cannot be created or revoked as asked."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key, without its secret."""

    id: int
    prefix: str
    role: Role
    site_id: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None

    def allows(self, role: Role) -> bool:
        """Whether this key's role is `role` or above (viewer < manager < operator < admin)."""
        return RANK[self.role] >= RANK[role]


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create_key(
    conn: AsyncConnection, role: Role, site_id: str, name: str | None = None
) -> tuple[ApiKey, str]:
    """A new key for `site_id`'s subtree; returns the stored key and the token (shown once).
    A name, when given, must say something: an empty or blank one names no holder in `keys list`."""
    if name is not None and not name.strip():
        raise ApiKeyError(
            f"--name: must name who or what holds the key (leave it out for none), got {name!r}"
        )
    cur = await conn.execute("SELECT active FROM sites WHERE id = %s", (site_id,))
    row = await cur.fetchone()
    if row is None or not row[0]:
        raise ApiKeyError(f"--site: no active site {site_id!r} (load the site file first)")
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    key_cur = conn.cursor(row_factory=class_row(ApiKey))
    await key_cur.execute(
        sql.SQL(
            "INSERT INTO api_keys (key_sha256, prefix, role, site_id, name) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING {}"
        ).format(COLUMNS),
        (digest(token), token[:PREFIX_CHARS], role, site_id, name),
    )
    key = await key_cur.fetchone()
    if key is None:
        raise ApiKeyError("the key was not stored")
    return key, token


async def find_key(conn: AsyncConnection, token: str) -> ApiKey | None:
    """The active key this token belongs to, if any."""
    cur = conn.cursor(row_factory=class_row(ApiKey))
    await cur.execute(
        sql.SQL("SELECT {} FROM api_keys WHERE key_sha256 = %s AND revoked_at IS NULL").format(
            COLUMNS
        ),
        (digest(token),),
    )
    return await cur.fetchone()


async def list_keys(conn: AsyncConnection) -> list[ApiKey]:
    cur = conn.cursor(row_factory=class_row(ApiKey))
    await cur.execute(sql.SQL("SELECT {} FROM api_keys ORDER BY id").format(COLUMNS))
    return await cur.fetchall()


async def revoke_key(conn: AsyncConnection, key_id: int) -> ApiKey:
    """Revoke a key; it stops working at once."""
    cur = conn.cursor(row_factory=class_row(ApiKey))
    await cur.execute(
        sql.SQL(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s "
            "RETURNING {}"
        ).format(COLUMNS),
        (key_id,),
    )
    key = await cur.fetchone()
    if key is None:
        raise ApiKeyError(f"no API key {key_id}")
    return key
