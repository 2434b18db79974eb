"""Alert fixtures: a small site, its database, an ingest worker, the alerts role, receivers."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiomqtt
import orjson
import pytest

from energyhub.alerts.service import run_alerts
from energyhub.clock import SystemClock
from energyhub.config import Settings
from energyhub.ingest.worker import IngestWorker
from energyhub.sites import SiteFile, parse_site
from energyhub.store.db import connect

BROKER_HOST, BROKER_PORT = "127.0.0.1", 1883
SECRET = "s3cret"  # noqa: S105  (a test's webhook secret)

SITE: dict[str, Any] = {
    "version": 1,
    "timezone": "Asia/Shanghai",
    "city": {
        "id": "c1",
        "parks": [
            {
                "id": "p1",
                "grid": {"import_max_kw": 2000},
                "alerts": {"silence": {"enabled": False}},
                "buildings": [
                    {
                        "id": "b1",
                        "class": "office-A",
                        "floor_area_m2": 1000,
                        "grid": {"import_max_kw": 500},
                        "meters": [
                            {"id": "main", "carrier": "electricity", "quantity": "power_kw"},
                            {"id": "soc", "carrier": "none", "quantity": "soc_pct", "asset": "bat"},
                        ],
                        "assets": [{"id": "bat", "type": "battery", "energy_kwh": 100, "power_kw": 50}],
                        "alerts": {
                            "silence": {"meters": ["main"], "intervals": 4, "interval_s": 0.25, "clear_min": 0},
                            "limit": {"for_min": 0.01, "clear_min": 0.01},
                            "soc": {"enabled": False},
                        },
                    },
                    {"id": "b2", "class": "hotel", "floor_area_m2": 1000},
                ],
            }
        ],
    },
}  # fmt: skip


def small_site() -> SiteFile:
    return parse_site(SITE, "test-site")


def site_with(park: dict[str, Any] | None = None, b1: dict[str, Any] | None = None) -> SiteFile:
    """The small site with other `alerts:` blocks on the park and on b1."""
    data = copy.deepcopy(SITE)
    if park is not None:
        data["city"]["parks"][0]["alerts"] = park
    if b1 is not None:
        data["city"]["parks"][0]["buildings"][0]["alerts"] = b1
    return parse_site(data, "test-site")


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def site_db(site_database: Callable[[SiteFile | None], Awaitable[str]]) -> str:
    """A migrated database with the small site loaded (a copy of a template)."""
    return await site_database(small_site())


def alert_settings(db_url: str, prefix: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "db_url": db_url,
        "mqtt_url": f"mqtt://{BROKER_HOST}:{BROKER_PORT}",
        "mqtt_topic_prefix": prefix,
        "mqtt_client_id_prefix": prefix,
        "ingest_metrics_port": 0,
        "ingest_flush_s": 0.05,
        "ingest_session_expiry_s": 60,
        "alerts_tick_s": 0.1,
        "alerts_reload_s": 0.3,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running(settings: Settings, site: SiteFile) -> AsyncIterator[None]:
    """An ingest worker and the alerts role in this process, stopped cleanly after."""
    worker = IngestWorker(settings, 0)
    stop = asyncio.Event()
    ingest = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(worker.ready.wait(), 30)
    alerts = asyncio.create_task(run_alerts(settings, site, SystemClock(), stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(ingest, alerts), 30)


async def publish_power(prefix: str, meter: str, values: list[float], every_s: float) -> None:
    """Publish one reading of b1's meter every `every_s`, stamped now."""
    async with aiomqtt.Client(BROKER_HOST, BROKER_PORT, protocol=aiomqtt.ProtocolVersion.V5) as c:
        for value in values:
            ts = int(datetime.now(UTC).timestamp() * 1000)
            await c.publish(
                f"{prefix}/p1/b1/{meter}", orjson.dumps({"ts": ts, "value": value}), qos=1
            )
            await asyncio.sleep(every_s)


async def meter_id(db_url: str, name: str) -> int:
    """The row id of b1's meter `name`."""
    async with connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT id FROM meters WHERE site_id = 'b1' AND name = %s", (name,)
        )
        row = await cur.fetchone()
    assert row is not None, name
    return int(row[0])


async def alert_rows(db_url: str, rule: str) -> list[tuple[Any, ...]]:
    async with connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT id, site_id, subject, opened_at, closed_at, opening_values FROM alerts "
            "WHERE rule = %s ORDER BY id",
            (rule,),
        )
        return await cur.fetchall()


async def wait_rows(
    db_url: str, rule: str, test: Any, timeout_s: float = 15
) -> list[tuple[Any, ...]]:
    """Poll the rule's alerts until `test(rows)` holds; returns the rows (asserts on timeout)."""
    deadline = time.monotonic() + timeout_s
    rows: list[tuple[Any, ...]] = []
    while time.monotonic() < deadline:
        rows = await alert_rows(db_url, rule)
        if test(rows):
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"{rule} alerts never reached the expected state: {rows}")


@dataclass
class Receiver:
    """A webhook receiver on localhost: answers with `statuses` in turn, then 204."""

    statuses: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def valid(self, headers: dict[str, str], body: bytes) -> bool:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(headers.get("x-energyhub-signature", ""), expected)


def serve(state: Receiver, port: int = 0) -> ThreadingHTTPServer:
    """Start answering webhook POSTs for `state` on localhost (0: a free port)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            n = len(state.requests)
            self.send_response(state.statuses[n - 1] if n <= len(state.statuses) else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(statuses=[500])
    server = serve(state)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
