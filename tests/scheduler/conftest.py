"""Scheduler fixtures: a one-building park, synthetic history, a private broker, a collector."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import orjson
import pandas as pd
import pytest

from energyhub.clock import Clock
from energyhub.config import Settings
from energyhub.scheduler.service import Scheduler
from energyhub.scheduler.setpoints import SetpointPublisher
from energyhub.sites import SiteFile, parse_site
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, connect, installed_backend, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter
from tests.support.broker import Broker

SHARED_BROKER = os.environ.get("ENERGYHUB_MQTT_URL", "mqtt://127.0.0.1:1883")
TZ = "Asia/Shanghai"
BATTERY_KWH = 2000.0


def site_doc(approval: str = "auto", **building: Any) -> dict[str, Any]:
    """Park `sp` with building `office`: main meter, PV, a battery with power and SOC meters."""
    office: dict[str, Any] = {
        "id": "office",
        "class": "office-A",
        "floor_area_m2": 20000,
        "meters": [
            {"id": "main", "carrier": "electricity", "quantity": "power_kw"},
            {"id": "pv", "carrier": "pv", "quantity": "power_kw", "asset": "office-pv"},
            {"id": "bess-p", "carrier": "electricity", "quantity": "power_kw",
             "asset": "office-bess"},
            {"id": "bess-soc", "carrier": "none", "quantity": "soc_pct", "asset": "office-bess"},
        ],
        "assets": [
            {"id": "office-pv", "type": "pv", "peak_kw": 300},
            {"id": "office-bess", "type": "battery", "energy_kwh": BATTERY_KWH, "power_kw": 500,
             "eta_charge": 0.95, "eta_discharge": 0.95, "soc_min": 0.1, "soc_max": 0.9,
             "soc_initial": 0.5, "soc_final": 0.5},
        ],
    }  # fmt: skip
    office.update(building)
    return {
        "version": 1,
        "timezone": TZ,
        "city": {
            "id": "tcity",
            "parks": [
                {
                    "id": "sp",
                    "grid": {"import_max_kw": 5000},
                    "plan_approval": approval,
                    "meters": [{"id": "outdoor", "carrier": "none", "quantity": "temperature_c"}],
                    "buildings": [office],
                }
            ],
        },
    }


def make_site(approval: str = "auto", **building: Any) -> SiteFile:
    return parse_site(site_doc(approval, **building), "test-site")


async def prepare_db(url: str, site: SiteFile) -> None:
    async with connect(url) as conn:
        await migrate(conn)
        await sync_site(conn, site)


def scheduler_settings(db_url: str, mqtt_url: str, prefix: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "db_url": db_url,
        "mqtt_url": mqtt_url,
        "mqtt_topic_prefix": prefix,
        "mqtt_client_id_prefix": prefix,
        "scheduler_sites": ["office"],
        "scheduler_period_min": 60,
        "scheduler_horizon_h": 12,
        "scheduler_history_days": 7,
        "ingest_metrics_port": 0,
        "ingest_flush_s": 0.05,
        "rollup_refresh_s": 0.2,
    }
    values.update(overrides)
    return Settings(**values)


# --- synthetic history ---------------------------------------------------------------------------


def office_load_kw(index: pd.DatetimeIndex) -> np.ndarray:
    """A known office load: 300 kW base, +600 kW in working hours on workdays."""
    local = index.tz_convert(TZ)
    hours = np.asarray(local.hour + local.minute / 60.0)
    working = (np.asarray(local.day_of_week) < 5) & (hours >= 8) & (hours < 18)
    return np.where(working, 900.0, 300.0)


def pv_kw(index: pd.DatetimeIndex) -> np.ndarray:
    local = index.tz_convert(TZ)
    hours = np.asarray(local.hour + local.minute / 60.0)
    return np.clip(250.0 * np.sin(np.pi * (hours - 6.0) / 12.0), 0.0, None)


@dataclass
class HistorySpec:
    """Which meters report, from when to when; the battery sits idle at `soc_pct`."""

    start: datetime
    end: datetime
    soc_pct: float = 50.0
    silent: dict[str, datetime] = field(default_factory=dict)
    """Meter name → the time it stops reporting."""
    step: timedelta = timedelta(minutes=15)


async def write_history(url: str, spec: HistorySpec) -> None:
    """Readings of every meter of the test site, each until its silence if it falls silent."""
    bounds = [pd.Timestamp(t).tz_convert("UTC") for t in (spec.start, spec.end)]
    index = pd.date_range(*bounds, freq=spec.step, inclusive="left")
    local = index.tz_convert(TZ)
    values = {
        "main": office_load_kw(index) - pv_kw(index),
        "pv": pv_kw(index),
        "bess-p": np.zeros(len(index)),
        "bess-soc": np.full(len(index), spec.soc_pct),
        "outdoor": 28.0 + 4.0 * np.sin(2 * np.pi * (np.asarray(local.hour) - 9) / 24),
    }
    series = {name: pd.Series(v, index=index) for name, v in values.items()}
    await write_readings(
        url, {n: v[v.index < pd.Timestamp(spec.silent.get(n, spec.end))] for n, v in series.items()}
    )


async def write_readings(url: str, series: dict[str, pd.Series]) -> None:
    """Store readings by meter name (meters the site lacks are skipped); refresh the rollups."""
    async with connect(url) as conn:
        cur = await conn.execute("SELECT name, id FROM meters WHERE active")
        ids = dict(await cur.fetchall())
        backend = await installed_backend(conn)
    ts, meter, value = [], [], []
    for name, values in series.items():
        if name in ids:
            ts.append(pd.DatetimeIndex(values.index).tz_convert("UTC").tz_convert(None).to_numpy())
            meter.append(np.full(len(values), ids[name]))
            value.append(values.to_numpy(dtype=float))
    batch = ReadingBatch.from_columns(
        np.concatenate(ts), np.concatenate(meter), np.concatenate(value)
    )
    async with open_pool(url, max_size=2) as pool:
        await ReadingWriter(pool, backend).write(batch)
    async with connect(url) as conn:
        await refresh_rollups(conn, backend)


# --- MQTT: a private broker and a setpoint collector -------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    server = Broker(tmp_path / "mosquitto")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@dataclass
class Received:
    topic: str
    body: dict[str, Any]


@asynccontextmanager
async def collect_setpoints(mqtt_url: str, prefix: str) -> AsyncIterator[list[Received]]:
    """Every setpoint published under `prefix` while the block runs (subscribed before it)."""
    host, port = mqtt_url.removeprefix("mqtt://").split(":")
    received: list[Received] = []
    async with aiomqtt.Client(host, int(port), protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(f"{prefix}/+/+/+/setpoint", qos=1)

        async def pump() -> None:
            async for message in client.messages:
                payload = message.payload
                assert isinstance(payload, bytes | bytearray)
                received.append(Received(str(message.topic), orjson.loads(payload)))

        task = asyncio.create_task(pump())
        try:
            yield received
        finally:
            await asyncio.sleep(0.3)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def scheduler_for(
    settings: Settings, site: SiteFile, clock: Clock
) -> AsyncIterator[Scheduler]:
    """A Scheduler with its own broker connection (what `energyhub scheduler` builds)."""
    assert settings.mqtt_url is not None
    async with SetpointPublisher(
        settings.mqtt_url, f"{settings.mqtt_client_id_prefix}-s", 10
    ) as pub:
        yield Scheduler(site, settings, clock, Backend.POSTGRES, pub)
