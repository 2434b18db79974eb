"""The `energyhub modbus` process: its gateways from the database, frames out over MQTT.

Gateways and meters come from the loaded site (`sites load`); a reload is picked up within
SITE_POLL_S by restarting the pollers. Frames go to the MQTT contract at QoS 1 through one
connection that reconnects with backoff; while the broker is away the pollers wait, and the gap
shows in the data and the log rather than in a queue that grows without bound.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from types import TracebackType

import aiomqtt
from psycopg_pool import AsyncConnectionPool

from energyhub.config import Settings
from energyhub.ingest.mapping import site_version
from energyhub.modbus.poller import Events, GatewayPoller, PollerMetrics, my_gateways
from energyhub.modbus.store import Gateway, load_gateways, record_read_failure
from energyhub.mqtt import mqtt_client, parse_mqtt_url
from energyhub.store.db import open_pool
from energyhub.store.devices import PresenceChange, record_presence
from energyhub.store.migrations import require_schema
from energyhub.waiting import set_within

log = logging.getLogger(__name__)

SITE_POLL_S = 2.0
RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 10.0


class FramePublisher:
    """Publishes gateway frames at QoS 1; reconnects with backoff and retries until sent."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        self.endpoint = parse_mqtt_url(settings.mqtt_url or "")
        self.prefix = settings.mqtt_topic_prefix
        self.client_id = client_id
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()
        self.published = 0

    async def __aenter__(self) -> FramePublisher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        if self._client is not None:
            try:
                await self._client.__aexit__(None, None, None)
            except aiomqtt.MqttError:
                pass
            self._client = None

    async def publish(self, place: str, payload: bytes) -> None:
        """Send a frame to `{prefix}/{park}/{site}`; waits with backoff while the broker is away."""
        delay = RECONNECT_FIRST_S
        while True:
            async with self._lock:
                try:
                    if self._client is None:
                        client = mqtt_client(self.endpoint, self.client_id)
                        await client.__aenter__()
                        self._client = client
                    await self._client.publish(f"{self.prefix}/{place}", payload, qos=1)
                    self.published += 1
                    return
                except aiomqtt.MqttError as exc:
                    log.warning("MQTT broker %s: %s; retrying in %.1f s", self.endpoint, exc, delay)
                    await self._close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)


class DatabaseEvents(Events):
    """Gateway presence into `field_devices`, refused reads into `rejected`."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def gateway(self, gateway: Gateway, online: bool, at: datetime, detail: str) -> None:
        async with self.pool.connection() as conn:
            await record_presence(conn, [PresenceChange("modbus", gateway.id, online, at, detail)])

    async def refused(self, gateway: Gateway, at: datetime, request: str, reason: str) -> None:
        async with self.pool.connection() as conn:
            await record_read_failure(conn, at, gateway, request, reason)


class ModbusService:
    """Poller `index` of `workers`: runs its gateways' pollers until `stop`."""

    def __init__(
        self, settings: Settings, index: int = 0, workers: int = 1, metrics_port: int = 0
    ) -> None:
        self.settings = settings
        self.index, self.workers = index, workers
        self.metrics = PollerMetrics()
        self.metrics_port = metrics_port
        self.pollers: list[GatewayPoller] = []
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        self.metrics.serve(self.metrics_port)
        async with open_pool(
            settings.db_url or "", min_size=1, max_size=2, timeout_s=settings.db_connect_timeout_s
        ) as pool:
            async with pool.connection() as conn:
                await require_schema(conn)
            client_id = f"{settings.mqtt_client_id_prefix}-modbus-{self.index}"
            async with FramePublisher(settings, client_id) as publisher:
                events = DatabaseEvents(pool)
                while not stop.is_set():
                    async with pool.connection() as conn:
                        version = await site_version(conn)
                        gateways = my_gateways(await load_gateways(conn), self.index, self.workers)
                    log.info(
                        "Modbus poller %s of %s: %d gateway(s), %d meter(s)",
                        self.index,
                        self.workers,
                        len(gateways),
                        sum(len(g.meters) for g in gateways),
                    )
                    await self._run_until_reload(pool, gateways, publisher, events, version, stop)

    async def _run_until_reload(
        self,
        pool: AsyncConnectionPool,
        gateways: list[Gateway],
        publisher: FramePublisher,
        events: Events,
        version: datetime | None,
        stop: asyncio.Event,
    ) -> None:
        halt = asyncio.Event()
        self.pollers = [GatewayPoller(g, publisher.publish, events, self.metrics) for g in gateways]
        tasks = [asyncio.create_task(p.run(halt)) for p in self.pollers]
        self.ready.set()
        try:
            while not stop.is_set():
                if await set_within(stop, SITE_POLL_S):
                    break
                async with pool.connection() as conn:
                    if await site_version(conn) != version:
                        log.info("site reloaded: restarting the Modbus pollers")
                        break
        finally:
            halt.set()
            await asyncio.gather(*tasks, return_exceptions=True)
