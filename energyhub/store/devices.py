"""Field devices (Modbus gateways, Sparkplug nodes and devices) and whether each is online.

A change is applied only if it is newer than the row's, so a late birth cannot undo a death.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection

UPSERT = """
INSERT INTO field_devices (kind, key, online, changed_at, detail)
SELECT * FROM unnest(%s::text[], %s::text[], %s::boolean[], %s::timestamptz[], %s::text[])
ON CONFLICT (kind, key) DO UPDATE
SET online = excluded.online, changed_at = excluded.changed_at, detail = excluded.detail
WHERE field_devices.changed_at <= excluded.changed_at"""

OFFLINE_METERS = """
SELECT m.id, d.changed_at, d.kind || ' ' || d.key || ' (' || d.detail || ')'
FROM meters AS m
JOIN field_devices AS d ON NOT d.online AND (
     (d.kind = 'sparkplug' AND m.device->>'format' = 'sparkplug'
      AND d.key IN (concat_ws('/', m.device->>'group', m.device->>'node'),
                    concat_ws('/', m.device->>'group', m.device->>'node', m.device->>'device')))
  OR (d.kind = 'modbus' AND m.device->>'format' = 'modbus' AND d.key = m.device->>'gateway'))
WHERE m.active AND m.id = ANY(%s)"""

DEVICES = "SELECT kind, key, online, changed_at, detail FROM field_devices ORDER BY kind, key"
OFFLINE = "SELECT kind || ' ' || key FROM field_devices WHERE NOT online ORDER BY kind, key"


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """A node or device came online (birth) or went offline (death)."""

    kind: str
    key: str
    online: bool
    at: datetime
    detail: str


async def record_presence(conn: AsyncConnection, changes: Sequence[PresenceChange]) -> None:
    """Apply changes in order; the newest per device wins."""
    latest: dict[tuple[str, str], PresenceChange] = {}
    for change in changes:
        seen = latest.get((change.kind, change.key))
        if seen is None or seen.at <= change.at:
            latest[(change.kind, change.key)] = change
    rows = list(latest.values())
    await conn.execute(
        UPSERT,
        (
            [r.kind for r in rows],
            [r.key for r in rows],
            [r.online for r in rows],
            [r.at for r in rows],
            [r.detail for r in rows],
        ),
    )


async def offline_meters(
    conn: AsyncConnection, meter_ids: Sequence[int]
) -> dict[int, tuple[datetime, str]]:
    """Meters whose field device is offline: meter id → (since, which device and why)."""
    cur = await conn.execute(OFFLINE_METERS, (list(meter_ids),))
    return {int(m): (since, what) for m, since, what in await cur.fetchall()}


async def field_devices(conn: AsyncConnection) -> list[PresenceChange]:
    cur = await conn.execute(DEVICES)
    return [PresenceChange(k, key, bool(on), at, d) for k, key, on, at, d in await cur.fetchall()]


async def offline_devices(conn: AsyncConnection) -> list[str]:
    """`<kind> <key>` of every field device that does not answer now."""
    cur = await conn.execute(OFFLINE)
    return [str(name) for (name,) in await cur.fetchall()]
