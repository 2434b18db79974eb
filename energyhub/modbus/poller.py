"""`energyhub modbus`: poll Modbus TCP gateways and publish what they read as MQTT gateway frames.

Each gateway has its own task and connection. Its meters are grouped by poll interval, and each
group into as few read requests as the register layout allows (`registers.plan_blocks`). A reading
is stamped with the time its request was sent. A gateway that does not answer is marked offline
(`field_devices`, the `energyhub_modbus_gateway_up` gauge, one log line) and retried with backoff
until it answers again; an exception response (a register the device does not have) is kept in
`rejected` with the gateway, unit, registers and the exception, and its good neighbours are read.
Several pollers split the gateways as ingest workers split sites (`--workers N --worker-index i`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from energyhub.ingest.metrics import serve_metrics
from energyhub.ingest.partition import owner
from energyhub.modbus.registers import Block, plan_blocks
from energyhub.modbus.store import Gateway, PolledMeter
from energyhub.waiting import set_within

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
FAILURE_RECORD_EVERY_S = 60.0
"""A register that keeps failing the same way is recorded in `rejected` at most once a minute."""
EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}

Publish = Callable[[str, bytes], Awaitable[None]]
"""Send one gateway frame (topic, JSON payload) on to the ingest."""


class PollerMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter(
            "energyhub_modbus_requests", "Read requests answered", ["gateway"], registry=r
        )
        self.registers = Counter(
            "energyhub_modbus_registers", "Registers read", ["gateway"], registry=r
        )
        self.failures = Counter(
            "energyhub_modbus_failures", "Reads that failed", ["gateway", "kind"], registry=r
        )
        self.up = Gauge(
            "energyhub_modbus_gateway_up", "1 while the gateway answers", ["gateway"], registry=r
        )

    def serve(self, port: int) -> None:
        if port:
            serve_metrics(self.registry, port, "127.0.0.1", "--metrics-port")


class Events:
    """What a poller reports beyond readings: gateway up/down and refused reads."""

    async def gateway(self, gateway: Gateway, online: bool, at: datetime, detail: str) -> None:
        """The gateway started or stopped answering."""

    async def refused(self, gateway: Gateway, at: datetime, request: str, reason: str) -> None:
        """A read answered with an exception response."""


def schedule(gateway: Gateway) -> list[tuple[float, list[Block]]]:
    """(interval, blocks) per distinct poll interval of the gateway's meters."""
    by_interval: dict[float, list[PolledMeter]] = {}
    for meter in gateway.meters:
        by_interval.setdefault(meter.interval_s, []).append(meter)
    return [
        (
            interval,
            plan_blocks((m.unit, f"{m.park}/{m.site}/{m.meter}", m.point) for m in members),
        )
        for interval, members in sorted(by_interval.items())
    ]


class GatewayPoller:
    """Polls one gateway until stopped."""

    def __init__(
        self, gateway: Gateway, publish: Publish, events: Events, metrics: PollerMetrics
    ) -> None:
        self.gateway = gateway
        self.publish = publish
        self.events = events
        self.metrics = metrics
        self.online: bool | None = None
        self.registers_read = 0
        self._last_failure: dict[tuple[int, str, int], tuple[str, float]] = {}

    async def run(self, stop: asyncio.Event) -> None:
        g = self.gateway
        groups = schedule(g)
        if not groups:
            return
        due = [time.monotonic()] * len(groups)
        client = AsyncModbusTcpClient(
            g.host, port=g.port, timeout=g.timeout_s, retries=0, reconnect_delay=0
        )
        backoff = BACKOFF_FIRST_S
        try:
            while not stop.is_set():
                index = min(range(len(groups)), key=due.__getitem__)
                wait_s = due[index] - time.monotonic()
                if wait_s > 0 and await set_within(stop, wait_s):
                    break
                interval, blocks = groups[index]
                try:
                    if not client.connected and not await client.connect():
                        raise ConnectionError(f"no connection to {g.host}:{g.port}")
                    await self._poll(client, blocks)
                except (ModbusException, ConnectionError, OSError, TimeoutError) as exc:
                    await self._down(exc)
                    client.close()
                    if await set_within(stop, backoff):
                        break
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    continue
                backoff = BACKOFF_FIRST_S
                due[index] += interval
                if due[index] < time.monotonic():  # fell behind: skip, don't burst
                    due[index] = time.monotonic() + interval
        finally:
            client.close()

    async def _poll(self, client: AsyncModbusTcpClient, blocks: list[Block]) -> None:
        at = datetime.now(UTC)
        frames: dict[str, dict[str, float]] = {}
        for block in blocks:
            read = (
                client.read_input_registers
                if block.function == "input"
                else client.read_holding_registers
            )
            response = await read(block.address, count=block.count, device_id=block.unit)
            if response.isError():
                await self._refused(block, at, int(getattr(response, "exception_code", 0)))
                continue
            self.metrics.requests.labels(self.gateway.id).inc()
            self.metrics.registers.labels(self.gateway.id).inc(block.count)
            self.registers_read += block.count
            for key, value in block.values(response.registers):
                park, site, meter = key.split("/", 2)
                frames.setdefault(f"{park}/{site}", {})[meter] = value
        await self._up()
        stamp = at.isoformat()
        for place, values in frames.items():
            await self.publish(place, orjson.dumps({"ts": stamp, "values": values}))

    async def _refused(self, block: Block, at: datetime, code: int) -> None:
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        reason = (
            f"Modbus gateway {self.gateway.id} {block}: exception {code} ({name}); "
            f"meters {', '.join(k.split('/', 2)[2] for k, _ in block.points)} not read"
        )
        self.metrics.failures.labels(self.gateway.id, "exception").inc()
        key = (block.unit, block.function, block.address)
        last = self._last_failure.get(key)
        now = time.monotonic()
        if last is not None and last[0] == reason and now - last[1] < FAILURE_RECORD_EVERY_S:
            return
        self._last_failure[key] = (reason, now)
        log.warning("%s", reason)
        await self.events.refused(self.gateway, at, str(block), reason)

    async def _up(self) -> None:
        if self.online is not True:
            self.online = True
            self.metrics.up.labels(self.gateway.id).set(1)
            log.info("Modbus gateway %s at %s answers", self.gateway.id, self.gateway.address)
            await self.events.gateway(self.gateway, True, datetime.now(UTC), "answers")

    async def _down(self, exc: BaseException) -> None:
        self.metrics.failures.labels(self.gateway.id, "no answer").inc()
        if self.online is False:
            return
        self.online = False
        self.metrics.up.labels(self.gateway.id).set(0)
        detail = f"no answer: {type(exc).__name__}: {exc}"[:200]
        log.warning(
            "Modbus gateway %s at %s: %s; retrying with backoff up to %.0f s",
            self.gateway.id,
            self.gateway.address,
            detail,
            BACKOFF_MAX_S,
        )
        await self.events.gateway(self.gateway, False, datetime.now(UTC), detail)


def my_gateways(gateways: list[Gateway], index: int, workers: int) -> list[Gateway]:
    """The gateways poller `index` of `workers` polls: stable across restarts and reloads."""
    return [g for g in gateways if owner(g.id, workers) == index]
