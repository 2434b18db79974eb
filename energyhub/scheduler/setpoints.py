"""Setpoints: what a plan step asks of each device, recorded before it is published at QoS 1.

A setpoint row is claimed (`INSERT ... ON CONFLICT DO NOTHING`) before its message goes out, so a
step is sent at most once per (plan, asset) and per (site, asset) whatever the plan, also across
restarts; the broker's PUBACK marks it `acked`. Payload (DESIGN §4):
`{"plan": <id>, "ts": "<step start, RFC 3339>", "p_kw": <number>}` on
`{prefix}/{park}/{site}/{asset}/setpoint`. What `p_kw` means per asset type:

- battery, thermal_storage, hydrogen_store: charge (> 0) or discharge (< 0) power;
- heat_pump: heat output; electric_chiller: cooling output; chp and fuel_cell: electric output;
- electrolyzer and flexible_load: electricity drawn.

Batteries, electrolyzers, heat and cold stores, the heat pumps and chillers that charge them,
CHPs, fuel cells and hydrogen stores also get `"import_limit_kw": <number >= 0>` where the
scheduler holds the connection's import (energyhub.scheduler.guard.import_limit_kw): the site's
local controller keeps the connection's import under it between the plan's steps, by charging
less, drawing less, discharging or generating more.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from zoneinfo import ZoneInfo

import orjson
import pandas as pd
from psycopg import AsyncConnection

from energyhub.mqtt import mqtt_client, parse_mqtt_url
from energyhub.optimize.scope import Scope
from energyhub.sites import (
    CHP,
    Asset,
    Battery,
    ElectricChiller,
    Electrolyzer,
    FlexibleLoad,
    FuelCell,
    HeatPump,
    HydrogenStore,
    ThermalStorage,
)

Row = pd.Series


def _storage(asset_id: str, row: Row) -> float:
    return float(row[f"{asset_id}:charge_kw"] - row[f"{asset_id}:discharge_kw"])


def _column(variable: str) -> Callable[[str, Row], float]:
    return lambda asset_id, row: float(row[f"{asset_id}:{variable}"])


SETPOINT_OF: dict[type, Callable[[str, Row], float]] = {
    Battery: _storage,
    ThermalStorage: _storage,
    HydrogenStore: _storage,
    HeatPump: _column("heat_kw"),
    ElectricChiller: _column("cooling_kw"),
    CHP: _column("electricity_kw"),
    FuelCell: _column("electricity_kw"),
    Electrolyzer: _column("electricity_kw"),
    FlexibleLoad: _column("power_kw"),
}
"""Asset types that take setpoints, and how a schedule row becomes their `p_kw`."""


@dataclass(frozen=True, slots=True)
class Setpoint:
    """One device's share of one plan step."""

    plan_id: int
    park_id: str
    site_id: str
    asset_id: str
    ts: datetime
    p_kw: float
    planned_p_kw: float | None = None
    """What the plan asked (`p_kw` unless the peak guard overrode it)."""
    override: str | None = None
    """Why `p_kw` is not the plan's (energyhub.scheduler.guard); None: it is."""
    import_limit_kw: float | None = None
    """The connection's import the device's local controller holds the import under; None:
    no limit."""

    def __post_init__(self) -> None:
        limit = self.import_limit_kw
        if limit is not None and not (math.isfinite(limit) and limit >= 0):
            raise ValueError(f"import_limit_kw: must be a number >= 0, got {limit}")

    def topic(self, prefix: str) -> str:
        return f"{prefix}/{self.park_id}/{self.site_id}/{self.asset_id}/setpoint"

    def payload(self, tz: ZoneInfo) -> bytes:
        ts = self.ts.astimezone(tz).isoformat()
        body: dict[str, object] = {"plan": self.plan_id, "ts": ts, "p_kw": round(self.p_kw, 3)}
        if self.import_limit_kw is not None:
            body["import_limit_kw"] = round(self.import_limit_kw, 3)
        return orjson.dumps(body)


def controllable(scope: Scope) -> list[tuple[str, Asset]]:
    """(site id, asset) of every asset in the scope that takes setpoints."""
    return [(node.id, a) for node, a in scope.assets() if type(a) in SETPOINT_OF]


def step_setpoints(
    plan_id: int, scope: Scope, schedule: pd.DataFrame, ts: pd.Timestamp, skip: set[str]
) -> list[Setpoint]:
    """The setpoints of the schedule row starting at `ts` (none if the plan has no such row),
    but none for the `skip` assets."""
    position = int(schedule.index.get_indexer(pd.DatetimeIndex([ts]))[0])
    if position < 0:
        return []
    row = schedule.iloc[position]
    asked = {a.id: SETPOINT_OF[type(a)](a.id, row) for _, a in controllable(scope)}
    return [
        Setpoint(plan_id, scope.park.id, site_id, a.id, ts.to_pydatetime(), asked[a.id],
                 planned_p_kw=asked[a.id])
        for site_id, a in controllable(scope)
        if a.id not in skip
    ]  # fmt: skip


async def claim(conn: AsyncConnection, setpoint: Setpoint, topic: str) -> bool:
    """Record the setpoint as being sent; False if this step of this asset was sent before."""
    cur = await conn.execute(
        "INSERT INTO setpoints (plan_id, site_id, asset_id, ts, p_kw, topic, planned_p_kw, "
        "override, import_limit_kw) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        (
            setpoint.plan_id, setpoint.site_id, setpoint.asset_id, setpoint.ts, setpoint.p_kw,
            topic, setpoint.planned_p_kw, setpoint.override, setpoint.import_limit_kw,
        ),
    )  # fmt: skip
    return await cur.fetchone() is not None


async def settle(conn: AsyncConnection, setpoint: Setpoint, error: str | None = None) -> None:
    """After publishing: acked (the broker's PUBACK came), or failed with the error."""
    await conn.execute(
        "UPDATE setpoints SET status = %s, error = %s, "
        "acked_at = CASE WHEN %s::text IS NULL THEN now() END "
        "WHERE plan_id = %s AND asset_id = %s AND ts = %s",
        (
            "failed" if error else "acked",
            error,
            error,
            setpoint.plan_id,
            setpoint.asset_id,
            setpoint.ts,
        ),
    )


async def acked_count(conn: AsyncConnection) -> int:
    """How many setpoints the broker has acknowledged, of every plan."""
    cur = await conn.execute("SELECT count(*) FROM setpoints WHERE status = 'acked'")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def mark_unconfirmed(conn: AsyncConnection) -> int:
    """Setpoints a stopped process claimed but never saw acknowledged; returns how many."""
    cur = await conn.execute("UPDATE setpoints SET status = 'unconfirmed' WHERE status = 'sending'")
    return cur.rowcount


class SetpointPublisher:
    """One MQTT v5 connection; `publish` returns once the broker acknowledged (QoS 1)."""

    def __init__(self, url: str, client_id: str, timeout_s: float) -> None:
        endpoint = parse_mqtt_url(url)
        self.timeout_s = timeout_s
        self._client = mqtt_client(endpoint, client_id, timeout_s)

    async def __aenter__(self) -> SetpointPublisher:
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._client.__aexit__(exc_type, exc, traceback)

    async def publish(self, topic: str, payload: bytes) -> None:
        await self._client.publish(topic, payload, qos=1, timeout=self.timeout_s)
