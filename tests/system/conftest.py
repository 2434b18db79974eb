"""The whole stack as processes on private services, and what the system tests measure.

`stack` starts a private PostgreSQL (initdb + pg_ctl) and a private Mosquitto (deploy config
minus auth, persistence on), migrates and loads the example site, and hands out a `Stack` that
starts `energyhub ingest --workers 2`, `energyhub scheduler`, `energyhub api` and simulated
fields (tests/support/field.py) as processes, each logging to a file of its own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
import yaml

from energyhub.api.keys import create_key
from energyhub.sites import load_site
from energyhub.store.db import connect
from energyhub.store.embedded import EmbeddedPostgres, free_port
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from simulators.record import Record, read_records
from tests.support.broker import Broker

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "expo-park.yaml"
PREFIX = "energyhub"
"""One segment: the simulated Tasmota and Shelly devices publish at the broker's root."""

Reading = tuple[int, datetime, float]
"""(meter id, ts, value) as stored."""


def children(pid: int) -> list[int]:
    """The child processes of `pid` (Linux)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@dataclass
class Stack:
    """The private services, the environment every energyhub process gets, and the processes."""

    root: Path
    site_file: Path
    broker: Broker
    database: EmbeddedPostgres
    api_key: str
    api_url: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYHUB_")}
        return env | {
            "ENERGYHUB_DB_URL": self.database.url,
            "ENERGYHUB_MQTT_URL": self.broker.url,
            "ENERGYHUB_MQTT_TOPIC_PREFIX": PREFIX,
            "ENERGYHUB_MQTT_CLIENT_ID_PREFIX": f"sys{self.root.name[-6:]}",
            "ENERGYHUB_SITE_FILE": str(self.site_file),
            "ENERGYHUB_LOG_LEVEL": "INFO",
            "ENERGYHUB_INGEST_METRICS_PORT": "0",
            "ENERGYHUB_API_PORT": self.api_url.rsplit(":", 1)[1],
            "ENERGYHUB_SCHEDULER_SITES": '["b05"]',
            "ENERGYHUB_SCHEDULER_HISTORY_DAYS": "3",
            "ENERGYHUB_SCHEDULER_HORIZON_H": "6",
            "ENERGYHUB_SCHEDULER_PERIOD_MIN": "60",
        }

    def log(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """A process with its output in `{name}.log`."""
        with self.log(name).open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, *args], env=self.env, cwd=REPO, stdout=out, stderr=out
            )
        self.processes[name] = process
        return process

    def field(
        self, name: str, start: datetime, steps: int, **options: Any
    ) -> subprocess.Popen[bytes]:
        """A simulated field publishing `steps` steps from `start`, its record log `{name}.jsonl`."""
        args = [
            "-m",
            "tests.support.field",
            "--site",
            str(self.site_file),
            "--url",
            self.broker.url,
        ]
        args += ["--prefix", PREFIX, "--start", start.isoformat(), "--steps", str(steps)]
        args += ["--log", str(self.root / f"{name}.jsonl")]
        for option, value in options.items():
            args += [f"--{option.replace('_', '-')}", str(value)]
        return self.start(name, *args)

    async def wait_for_log(
        self, name: str, text: str, count: int = 1, timeout_s: float = 60
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while self.log(name).read_text(errors="replace").count(text) < count:
            process = self.processes[name]
            assert process.poll() is None, f"{name} exited:\n{self.tail(name)}"
            assert time.monotonic() < deadline, f"{name}: no {text!r} in {timeout_s} s"
            await asyncio.sleep(0.1)

    async def wait_exit(self, name: str, timeout_s: float) -> int:
        process = self.processes[name]
        deadline = time.monotonic() + timeout_s
        while process.poll() is None:
            assert time.monotonic() < deadline, f"{name} still running after {timeout_s} s"
            await asyncio.sleep(0.1)
        return process.returncode

    def tail(self, name: str, lines: int = 30) -> str:
        return "\n".join(self.log(name).read_text(errors="replace").splitlines()[-lines:])

    def records(self, *names: str) -> list[Record]:
        """Every record of the named fields' logs."""
        return [r for n in names for r in read_records(self.root / f"{n}.jsonl")]

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def auto_approved(root: Path) -> Path:
    """The example site with plans approved once solved, so the scheduler sends setpoints."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    for park in doc["city"]["parks"]:
        park["plan_approval"] = "auto"
    path = root / "site.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    database = EmbeddedPostgres()
    broker = Broker(tmp_path / "mosquitto")
    root = tmp_path / f"run{uuid.uuid4().hex[:6]}"
    root.mkdir()
    site_file = auto_approved(root)
    try:
        await database.start()
        async with connect(database.url) as conn:
            await migrate(conn)
            await sync_site(conn, load_site(site_file))
            _, token = await create_key(conn, "viewer", "shanghai", "system test")
        broker.start()
        api_url = f"http://127.0.0.1:{free_port()}"
        running = Stack(root, site_file, broker, database, token, api_url)
        try:
            yield running
        finally:
            running.stop_all()
    finally:
        broker.stop()
        try:
            await database.stop("immediate")
        finally:
            database.remove()


# --- what was published, what is stored -------------------------------------------------------


@dataclass(frozen=True)
class MeterIndex:
    """Meter ids by (park, site, name) and by device, as the site file maps them."""

    by_name: dict[tuple[str, str, str], tuple[int, str]]
    by_device: dict[tuple[str, str], tuple[int, str]]
    zone: ZoneInfo

    @classmethod
    async def load(cls, db_url: str) -> MeterIndex:
        query = (
            "SELECT m.id, m.name, m.quantity, m.device, s.id, "
            "CASE WHEN s.kind = 'park' THEN s.id ELSE s.parent_id END "
            "FROM meters m JOIN sites s ON s.id = m.site_id WHERE m.active"
        )
        async with connect(db_url) as conn:
            rows = await (await conn.execute(query)).fetchall()
        by_name, by_device = {}, {}
        for meter_id, name, quantity, device, site_id, park_id in rows:
            by_name[(park_id, site_id, name)] = (int(meter_id), quantity)
            if device:
                topic = (
                    f"tele/{device['device']}/SENSOR"
                    if device["format"] == "tasmota"
                    else f"{device['device']}/status/{device['component']}:{device['channel']}"
                )
                by_device[(topic, quantity)] = (int(meter_id), quantity)
        return cls(by_name, by_device, load_site(EXAMPLE).tz)


def _utc(text: str, zone: ZoneInfo) -> datetime:
    value = datetime.fromisoformat(text)
    return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)


def published_readings(records: Iterable[Record], meters: MeterIndex) -> list[Reading]:
    """The readings the records carry, decoded here from the contract (DESIGN §4), not by the
    ingest's decoders: frames, single readings, Tasmota SENSOR and Shelly status."""
    readings: list[Reading] = []
    for record in records:
        body = orjson.loads(record.payload)
        parts = record.topic.split("/")
        if parts[0] == PREFIX and len(parts) == 3:
            ts = _utc(body["ts"], meters.zone)
            for name, value in body["values"].items():
                meter_id, _ = meters.by_name[(parts[1], parts[2], name)]
                readings.append((meter_id, ts, float(value)))
        elif parts[0] == PREFIX and len(parts) == 4:
            meter_id, _ = meters.by_name[(parts[1], parts[2], parts[3])]
            ts = datetime.fromtimestamp(body["ts"] / 1000, UTC)
            readings.append((meter_id, ts, float(body["value"])))
        elif parts[0] == "tele":
            ts = _utc(body["Time"], meters.zone)
            for quantity, value in (
                ("energy_kwh", body["ENERGY"]["Total"]),
                ("power_kw", body["ENERGY"]["Power"] / 1000.0),
            ):
                if (record.topic, quantity) in meters.by_device:
                    meter_id, _ = meters.by_device[(record.topic, quantity)]
                    readings.append((meter_id, ts, float(value)))
        else:
            ts = datetime.fromtimestamp(body["aenergy"]["minute_ts"], UTC)
            for quantity, value in (
                ("energy_kwh", body["aenergy"]["total"] / 1000.0),
                ("power_kw", body["apower"] / 1000.0),
            ):
                if (record.topic, quantity) in meters.by_device:
                    meter_id, _ = meters.by_device[(record.topic, quantity)]
                    readings.append((meter_id, ts, float(value)))
    return readings


async def stored_readings(db_url: str) -> list[Reading]:
    async with connect(db_url) as conn:
        cur = await conn.execute("SELECT meter_id, ts, value FROM readings")
        return [(int(m), ts, float(v)) for m, ts, v in await cur.fetchall()]


async def count(db_url: str, query: str) -> int:
    async with connect(db_url, 2) as conn:
        row = await (await conn.execute(query)).fetchone()
        return int(row[0]) if row else 0


# --- the API poller and the ingest monitor ------------------------------------------------------


@dataclass(frozen=True)
class Poll:
    """One API request: when it started (epoch s), what, its status (0: no answer), latency."""

    t: float
    path: str
    status: int
    latency_s: float
    error: str = ""


async def poll_api(
    url: str, key: str, paths: list[str], polls: list[Poll], stop: asyncio.Event, timeout_s: float
) -> None:
    """Request the paths in turn until `stop`, recording every answer or failure."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout_s) as client:
        turn = 0
        while not stop.is_set():
            path = paths[turn % len(paths)]
            turn += 1
            started, began = time.time(), time.perf_counter()
            try:
                response = await client.get(path)
                polls.append(Poll(started, path, response.status_code, time.perf_counter() - began))
            except httpx.HTTPError as exc:
                elapsed = time.perf_counter() - began
                polls.append(Poll(started, path, 0, elapsed, f"{type(exc).__name__}: {exc}"))
            await asyncio.sleep(0.1)


async def monitor_stored(
    db_url: str, samples: list[tuple[float, int | None]], stop: asyncio.Event
) -> None:
    """Sample how many readings are stored, twice a second (None while the database is away)."""
    while not stop.is_set():
        try:
            value: int | None = await asyncio.wait_for(
                count(db_url, "SELECT count(*) FROM readings"), 3
            )
        except (OSError, TimeoutError, Exception):
            value = None
        samples.append((time.time(), value))
        await asyncio.sleep(0.5)
