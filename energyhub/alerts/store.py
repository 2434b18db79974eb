"""The `alerts` table: open once, close with a resolution time, list in scope, acknowledge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

COLUMNS = (
    "id, site_id, park_id, rule, subject, severity, message, opened_at, closed_at, "
    "opening_values, closing_values, acknowledged_by, acknowledged_at"
)
OPEN = f"""
INSERT INTO alerts (site_id, park_id, rule, subject, severity, message, opened_at, opening_values)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (site_id, rule, subject) WHERE closed_at IS NULL DO NOTHING
RETURNING {COLUMNS}"""  # noqa: S608  (COLUMNS is a constant)
CLOSE = f"""
UPDATE alerts SET closed_at = greatest(%s, opened_at), closing_values = %s
WHERE site_id = %s AND rule = %s AND subject = %s AND closed_at IS NULL
RETURNING {COLUMNS}"""  # noqa: S608  (COLUMNS is a constant)


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One alert as stored."""

    id: int
    site_id: str
    park_id: str
    rule: str
    subject: str
    severity: str
    message: str
    opened_at: datetime
    closed_at: datetime | None
    opening_values: dict[str, Any]
    closing_values: dict[str, Any] | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None


async def open_alert(
    conn: AsyncConnection,
    key: tuple[str, str, str],
    park_id: str,
    severity: str,
    message: str,
    at: datetime,
    values: dict[str, Any],
) -> AlertRow | None:
    """Open an alert; None if one is open for this site, rule and subject already."""
    site_id, rule, subject = key
    cur = conn.cursor(row_factory=class_row(AlertRow))
    params = (site_id, park_id, rule, subject, severity, message, at, Jsonb(values))
    await cur.execute(OPEN, params)
    return await cur.fetchone()


async def close_alert(
    conn: AsyncConnection, key: tuple[str, str, str], at: datetime, values: dict[str, Any]
) -> AlertRow | None:
    """Close the open alert of this site, rule and subject; None if none is open."""
    site_id, rule, subject = key
    cur = conn.cursor(row_factory=class_row(AlertRow))
    await cur.execute(CLOSE, (at, Jsonb(values), site_id, rule, subject))
    return await cur.fetchone()


async def open_keys(conn: AsyncConnection) -> set[tuple[str, str, str]]:
    """(site, rule, subject) of every open alert: the evaluator resumes them after a restart."""
    cur = await conn.execute("SELECT site_id, rule, subject FROM alerts WHERE closed_at IS NULL")
    return {(str(s), str(r), str(j)) for s, r, j in await cur.fetchall()}
