"""/health names the field devices (Modbus gateways, Sparkplug nodes) that do not answer."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from fastapi import FastAPI

from energyhub.store.db import connect
from energyhub.store.devices import PresenceChange, record_presence

from .conftest import World


async def test_health_names_field_devices_that_do_not_answer(app: FastAPI, world: World) -> None:
    at = datetime(2026, 12, 6, 8, tzinfo=UTC)
    async with connect(world.url) as conn:
        await record_presence(
            conn,
            [
                PresenceChange("modbus", "gw-b01", True, at, "answers"),
                PresenceChange("sparkplug", "expo-b02/gw1", False, at, "NDEATH"),
            ],
        )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as anonymous:
        body = (await anonymous.get("/health")).json()
    assert body["field_devices_offline"] == ["sparkplug expo-b02/gw1"]
    assert body["status"] == "degraded"
    async with connect(world.url) as conn:  # the node's rebirth
        await record_presence(
            conn, [PresenceChange("sparkplug", "expo-b02/gw1", True, at.replace(hour=9), "NBIRTH")]
        )
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as anonymous:
        body = (await anonymous.get("/health")).json()
    assert body["field_devices_offline"] == []
