"""The `alerts` table: open once, close with a resolution time, list in scope, acknowledge; and
the `alert_rules` a site's rules were replaced with through the API."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

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
LIST = f"""
WITH RECURSIVE down (id) AS (
    SELECT id FROM sites WHERE id = %(scope)s
    UNION ALL
    SELECT s.id FROM sites AS s JOIN down ON s.parent_id = down.id
)
SELECT {COLUMNS} FROM alerts
WHERE site_id IN (SELECT id FROM down)
  AND (%(site)s::text IS NULL OR site_id = %(site)s)
  AND (%(rule)s::text IS NULL OR rule = %(rule)s)
  AND (%(severity)s::text IS NULL OR severity = %(severity)s)
  AND (%(status)s::text = 'all' OR (closed_at IS NULL) = (%(status)s::text = 'open'))
  AND (%(since)s::timestamptz IS NULL OR coalesce(closed_at, 'infinity') >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR opened_at < %(until)s)
ORDER BY opened_at DESC, id DESC LIMIT %(limit)s"""  # noqa: S608  (COLUMNS is a constant)
ACK = f"""
UPDATE alerts SET acknowledged_by = coalesce(acknowledged_by, %s),
    acknowledged_at = coalesce(acknowledged_at, now())
WHERE id = %s RETURNING {COLUMNS}"""  # noqa: S608  (COLUMNS is a constant)
SAVE_RULES = """
INSERT INTO alert_rules (site_id, rules, updated_by, updated_at) VALUES (%s, %s, %s, now())
ON CONFLICT (site_id) DO UPDATE SET rules = excluded.rules, updated_by = excluded.updated_by,
    updated_at = now()"""


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts of a scope (a site and its subtree) to list, newest first."""

    scope: str
    site: str | None = None
    rule: str | None = None
    severity: str | None = None
    status: Literal["open", "closed", "all"] = "all"
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 500


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


async def list_alerts(conn: AsyncConnection, where: AlertFilter) -> list[AlertRow]:
    """The alerts of `where.scope`'s subtree that pass the filter, newest first."""
    cur = conn.cursor(row_factory=class_row(AlertRow))
    await cur.execute(LIST, asdict(where))
    return await cur.fetchall()


async def alert_site(conn: AsyncConnection, alert_id: int) -> str | None:
    """The site an alert belongs to; None if there is no such alert."""
    cur = await conn.execute("SELECT site_id FROM alerts WHERE id = %s", (alert_id,))
    row = await cur.fetchone()
    return str(row[0]) if row else None


async def acknowledge(conn: AsyncConnection, alert_id: int, by: str) -> AlertRow | None:
    """Mark an alert seen by `by`; the first acknowledgement is kept. None if no such alert."""
    cur = conn.cursor(row_factory=class_row(AlertRow))
    await cur.execute(ACK, (by, alert_id))
    return await cur.fetchone()


async def stored_rules(conn: AsyncConnection, site_id: str) -> dict[str, Any] | None:
    """The rules a site's were replaced with through the API; None if the site file's apply."""
    cur = await conn.execute("SELECT rules FROM alert_rules WHERE site_id = %s", (site_id,))
    row = await cur.fetchone()
    return dict(row[0]) if row else None


async def save_rules(conn: AsyncConnection, site_id: str, rules: dict[str, Any], by: str) -> None:
    """Replace a site's rules (the `alerts:` block as given), saying who did."""
    await conn.execute(SAVE_RULES, (site_id, Jsonb(rules), by))
