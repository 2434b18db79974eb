"""The demo's database and broker (the configured ones, or private ones) and its ingest worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from rich.console import Console

from energyhub.config import Settings
from energyhub.embedded_broker import embedded_mosquitto
from energyhub.errors import EmbeddedServiceError
from energyhub.ingest.worker import IngestWorker
from energyhub.store.embedded import embedded_postgres

CATCH_UP_TIMEOUT_S = 120.0
INGEST_START_TIMEOUT_S = 30.0
QUIET_S = 0.5
"""No message for this long, nothing pending: the ingest has what was published."""
STALL_S = 5.0
"""No message for this long while some are still missing: the broker dropped them."""
HISTORY_BACKLOG = 1_000
"""Messages the history may run ahead of the ingest: what a stock Mosquitto queues for a
subscriber beyond those in flight (`max_queued_messages` 1000); it drops the rest."""
RECEIVED = "energyhub_ingest_messages_received_total"


@dataclass(frozen=True)
class DemoServices:
    db_url: str
    mqtt_url: str


@asynccontextmanager
async def demo_services(settings: Settings, console: Console) -> AsyncIterator[DemoServices]:
    """The configured database and broker, or private ones started for the demo."""
    async with AsyncExitStack() as stack:
        db_url, mqtt_url = settings.db_url, settings.mqtt_url
        if db_url:
            console.print("PostgreSQL: ENERGYHUB_DB_URL")
        else:
            with console.status("starting a private PostgreSQL (no ENERGYHUB_DB_URL set)"):
                db_url = (await stack.enter_async_context(embedded_postgres())).url
            console.print(
                f"private PostgreSQL at {db_url} (removed when the demo ends)", soft_wrap=True
            )
        if mqtt_url:
            console.print("MQTT broker: ENERGYHUB_MQTT_URL")
        else:
            mqtt_url = await stack.enter_async_context(embedded_mosquitto())
            console.print(
                f"private Mosquitto at {mqtt_url} (removed when the demo ends)", soft_wrap=True
            )
        yield DemoServices(db_url, mqtt_url)


@asynccontextmanager
async def ingesting(settings: Settings) -> AsyncIterator[IngestWorker]:
    """An ingest worker in this process, subscribed before the block runs, stopped after it."""
    worker = IngestWorker(settings.model_copy(update={"ingest_metrics_port": 0}))
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    ready = asyncio.create_task(worker.ready.wait())
    await asyncio.wait(
        [running, ready], timeout=INGEST_START_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
    )
    ready.cancel()
    if running.done():
        running.result()  # it failed at start: raise its error
    if not worker.ready.is_set():
        stop.set()
        await running
        raise EmbeddedServiceError(
            f"the ingest worker did not subscribe within {INGEST_START_TIMEOUT_S:.0f} s"
        )
    try:
        yield worker
    finally:
        stop.set()
        await running


class _Stillness:
    """How long the worker has received nothing and held nothing uncommitted."""

    def __init__(self, worker: IngestWorker) -> None:
        self.worker = worker
        self._last, self._since = -1.0, time.monotonic()

    def seconds(self) -> float:
        received = self.worker.metrics.value(RECEIVED)
        if received != self._last or self.worker.source.unacknowledged:
            self._last, self._since = received, time.monotonic()
        return time.monotonic() - self._since


async def settled(worker: IngestWorker) -> None:
    """Until the worker has committed all it received and nothing new came for a while."""
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    stillness = _Stillness(worker)
    while time.monotonic() < deadline:
        if stillness.seconds() >= QUIET_S:
            return
        await asyncio.sleep(0.05)


def keeping_up(worker: IngestWorker) -> Callable[[int], Awaitable[None]]:
    """A simulator `backlog`: hold the history back while the worker is more than
    HISTORY_BACKLOG messages behind. Once nothing came for STALL_S, messages were lost on the
    way (a broker that queues fewer): it holds back no more, and `caught_up` reports the loss."""
    lossy = False

    async def backlog(published: int) -> None:
        nonlocal lossy
        stillness = _Stillness(worker)
        while not lossy and published - worker.metrics.value(RECEIVED) > HISTORY_BACKLOG:
            lossy = stillness.seconds() >= STALL_S
            await asyncio.sleep(0.005)

    return backlog


def committed(worker: IngestWorker) -> Callable[[int], Awaitable[None]]:
    """A lockstep's wait: until the worker has received `published` messages and committed every
    one (it acknowledges after the commit: a message taken into a batch not yet written is
    received, not acknowledged), or nothing came for STALL_S (the rest was lost)."""

    async def stored(published: int) -> None:
        stillness = _Stillness(worker)
        while worker.metrics.value(RECEIVED) < published or worker.source.unacknowledged:
            if stillness.seconds() >= STALL_S:
                return
            await asyncio.sleep(0.002)

    return stored


async def caught_up(worker: IngestWorker, published: int) -> int:
    """Until the worker has received and committed everything published so far; the number of
    messages it never received (nothing came for STALL_S, or CATCH_UP_TIMEOUT_S passed)."""
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    metrics = worker.metrics
    stillness = _Stillness(worker)
    while time.monotonic() < deadline and stillness.seconds() < STALL_S:
        received = metrics.value(RECEIVED)
        batches = metrics.value("energyhub_ingest_batch_seconds_count")
        if received >= published and worker.source.pending == 0 and batches:
            await asyncio.sleep(2 * worker.settings.ingest_flush_s)
            return 0
        await asyncio.sleep(0.1)
    return max(published - int(metrics.value(RECEIVED)), 0)
