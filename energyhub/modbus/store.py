"""What the poller reads from and writes to the database: its gateways, and read failures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection

from energyhub.modbus.registers import Point

GATEWAYS = """
SELECT p.id, g->>'id', g->>'host', (g->>'port')::int, (g->>'timeout_s')::float8
FROM sites AS p, jsonb_array_elements(coalesce(p.attributes->'modbus_gateways', '[]')) AS g
WHERE p.kind = 'park' AND p.active"""

METERS = """
SELECT m.device->>'gateway', (m.device->>'unit')::int, (m.device->>'interval_s')::float8,
       m.device->'resolved', s.id, CASE WHEN s.kind = 'park' THEN s.id ELSE s.parent_id END, m.name
FROM meters AS m JOIN sites AS s ON s.id = m.site_id
WHERE m.active AND s.active AND m.device->>'format' = 'modbus'
ORDER BY m.id"""

INSERT_REJECTED = (
    "INSERT INTO rejected (received_at, topic, payload, reason) VALUES (%s, %s, %s, %s)"
)


@dataclass(frozen=True, slots=True)
class PolledMeter:
    park: str
    site: str
    meter: str
    unit: int
    interval_s: float
    point: Point


@dataclass(frozen=True, slots=True)
class Gateway:
    id: str
    park: str
    host: str
    port: int
    timeout_s: float
    meters: tuple[PolledMeter, ...]

    @property
    def address(self) -> str:
        return f"modbus://{self.host}:{self.port}"


async def load_gateways(conn: AsyncConnection) -> list[Gateway]:
    """Every gateway of an active park with the active meters it serves (after `sites load`)."""
    cur = await conn.execute(METERS)
    meters: dict[str, list[PolledMeter]] = {}
    for gateway, unit, interval_s, resolved, site, park, name in await cur.fetchall():
        point = Point(**resolved)
        meters.setdefault(gateway, []).append(
            PolledMeter(park, site, name, unit, float(interval_s), point)
        )
    cur = await conn.execute(GATEWAYS)
    return [
        Gateway(gid, park, host, port, float(timeout_s), tuple(meters.get(gid, ())))
        for park, gid, host, port, timeout_s in await cur.fetchall()
    ]


async def record_read_failure(
    conn: AsyncConnection, at: datetime, gateway: Gateway, request: str, reason: str
) -> None:
    """A refused read (exception response), kept in `rejected` beside refused MQTT messages."""
    await conn.execute(INSERT_REJECTED, (at, gateway.address, request, reason))
