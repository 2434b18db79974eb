"""One ingest worker: take messages, decode, validate, write a batch, then acknowledge it.

A batch is flushed when it holds `ingest_batch_rows` readings or its first message is
`ingest_flush_s` old. While the database is down the batch is retried with backoff and nothing is
acknowledged, so the broker stops sending after `ingest_receive_maximum` messages and keeps the
rest in the worker's persistent session; memory stays bounded and nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg_pool import AsyncConnectionPool

from energyhub.config import Settings
from energyhub.errors import DatabaseUnavailableError, EnergyhubError
from energyhub.ingest.decoders import Decoder
from energyhub.ingest.mapping import MeterMap, load_meter_map, site_version
from energyhub.ingest.message import BatchBuilder
from energyhub.ingest.metrics import IngestMetrics
from energyhub.ingest.partition import Membership, Subscriptions, subscriptions
from energyhub.ingest.source import MqttSource
from energyhub.ingest.sparkplug.session import SparkplugSessions
from energyhub.ingest.validate import CounterMemory, Limits, validate
from energyhub.mqtt import parse_mqtt_url
from energyhub.store.db import Backend, installed_backend, open_pool
from energyhub.store.maintenance import refresh_dirty_rollups
from energyhub.store.migrations import require_schema
from energyhub.store.writer import ReadingWriter, RejectedRow

log = logging.getLogger(__name__)

MAPPING_POLL_S = 2.0
"""How often the worker checks whether `sites load` changed the meters."""
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0


def client_id(settings: Settings, index: int) -> str:
    """Stable per worker, so a restarted worker resumes its persistent session."""
    return f"{settings.mqtt_client_id_prefix}-ingest-{index}"


def _column_text(text: str) -> str:
    """Text for a `rejected` column: PostgreSQL refuses NUL in `text`, and a reason that quotes a
    client's meter name (`{"values": {"main\u0000": 1}}`) would otherwise fail the batch's
    commit again and again, holding every good reading behind it."""
    return text.replace("\x00", "\ufffd")


def _payload_text(payload: bytes, limit: int) -> str:
    """The payload for `rejected.payload`: UTF-8 with replacements, no NULs, truncated."""
    return _column_text(payload[: limit * 4].decode("utf-8", errors="replace"))[:limit]


def _summary(filters: list[str], shown: int = 4) -> str:
    """A log-sized list of filters: the first few and how many more."""
    listed = ", ".join(filters[:shown]) or "nothing (no site or device of this worker's share)"
    return listed + (f" and {len(filters) - shown} more" if len(filters) > shown else "")


class IngestWorker:
    """Runs until `stop` is set; every committed message is acknowledged, no other."""

    def __init__(
        self,
        settings: Settings,
        index: int = 0,
        metrics: IngestMetrics | None = None,
        workers: int = 1,
    ) -> None:
        if not settings.db_url or not settings.mqtt_url:
            raise EnergyhubError("ingest needs ENERGYHUB_DB_URL and ENERGYHUB_MQTT_URL")
        self.settings = settings
        self.membership = Membership(index, workers, settings.ingest_subscription)
        self.db_url = settings.db_url
        self.index = index
        self.metrics = metrics or IngestMetrics()
        self.limits = Limits(settings.ingest_max_future_skew_s, settings.retention_days)
        self.counters = CounterMemory()
        self.endpoint = parse_mqtt_url(settings.mqtt_url)
        self.ready = asyncio.Event()
        """Set once the worker is connected and subscribed."""
        self.sparkplug = SparkplugSessions()
        """Sparkplug edge nodes' births, aliases and sequence numbers, across site reloads."""

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        async with open_pool(
            self.db_url, min_size=1, max_size=2, timeout_s=settings.db_connect_timeout_s
        ) as pool:
            async with pool.connection() as conn:
                await require_schema(conn)
                backend = await installed_backend(conn)
                self.mapping = await load_meter_map(conn)
            self.decoder = self._decoder(self.mapping)
            plan = self._subscriptions(self.mapping)
            async with MqttSource(
                self.endpoint,
                client_id(settings, self.index),
                plan.hold,
                receive_maximum=settings.ingest_receive_maximum,
                session_expiry_s=settings.ingest_session_expiry_s,
                drop=plan.drop,
            ) as source:
                self.source = source
                self.ready.set()
                log.info(
                    "ingest worker %s of %s (%s) subscribed to %s at %s",
                    self.index,
                    self.membership.workers,
                    self.membership.mode,
                    _summary(plan.hold),
                    self.endpoint,
                )
                chores = [
                    self._every(MAPPING_POLL_S, lambda: self._refresh_mapping(pool, source), stop),
                    self._every(settings.ingest_log_every_s, self._log_summary, stop),
                    self._every(
                        settings.rollup_refresh_s, lambda: self._rollups(pool, backend), stop
                    ),
                ]
                background = [asyncio.create_task(chore) for chore in chores]
                try:
                    await self._consume(source, ReadingWriter(pool, backend), stop)
                finally:
                    for task in background:
                        task.cancel()
                    await asyncio.gather(*background, return_exceptions=True)

    def _subscriptions(self, mapping: MeterMap) -> Subscriptions:
        return subscriptions(
            self.membership,
            self.settings.mqtt_topic_prefix,
            self.settings.mqtt_client_id_prefix,
            mapping.sites,
            mapping.device_topics(),
        )

    def _decoder(self, mapping: MeterMap) -> Decoder:
        return Decoder(
            mapping,
            self.settings.mqtt_topic_prefix,
            self.settings.ingest_max_payload_bytes,
            self.sparkplug,
        )

    async def _consume(
        self, source: MqttSource, writer: ReadingWriter, stop: asyncio.Event
    ) -> None:
        """Decode the next batch while the previous one is written: one write in flight."""
        flush_s = self.settings.ingest_flush_s
        builder, started = BatchBuilder(), 0.0
        writing: asyncio.Task[bool] | None = None
        while not stop.is_set():
            waited = time.monotonic() - started if builder.messages else 0.0
            await source.wait(max(0.0, flush_s - waited))
            taken = source.take()
            if taken and not builder.messages:
                started = time.monotonic()
            before = builder.messages
            for delivery in taken:
                self.decoder.decode(delivery, builder)
            self._send_commands(source)
            self.metrics.received.inc(builder.messages - before)
            self.metrics.pending.set(source.unacknowledged)
            full = builder.rows >= self.settings.ingest_batch_rows
            if builder.messages and (full or time.monotonic() - started >= flush_s):
                if writing is not None and not await writing:
                    return
                writing = asyncio.create_task(self._flush(builder, writer, source, stop))
                builder = BatchBuilder()
        if writing is not None and not await writing:
            return
        if builder.messages:  # a clean stop commits what it has when it can
            await self._flush(builder, writer, source, stop, retry=False)

    async def _flush(
        self,
        builder: BatchBuilder,
        writer: ReadingWriter,
        source: MqttSource,
        stop: asyncio.Event,
        retry: bool = True,
    ) -> bool:
        """Commit the batch, then acknowledge its messages; False if stopped before a commit."""
        batch = validate(
            builder, time.time_ns() // 1000, self.limits, self.mapping.by_id, self.counters
        )
        rejected = [self._rejected_row(builder, r.message, r.reason) for r in builder.rejects]
        delay = RETRY_FIRST_S
        started = time.perf_counter()
        while True:
            try:
                result = await writer.write(batch, rejected, builder.presence)
                break
            except DatabaseUnavailableError as exc:
                if not retry or stop.is_set():
                    log.warning("stopping with an uncommitted batch (the broker redelivers it)")
                    return False
                self.metrics.db_retries.inc()
                log.warning("database unavailable, retrying in %.1f s: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
        source.ack(builder.deliveries)
        self._record(
            builder, batch.ts, result.new, result.duplicates, time.perf_counter() - started
        )
        return True

    def _send_commands(self, source: MqttSource) -> None:
        """Publish the Sparkplug rebirth requests the decoder queued (QoS 0, as the spec has it:
        a request lost with the connection is asked again on the node's next message)."""
        for topic, payload in self.sparkplug.take_commands():
            if source.publish(topic, payload):
                self.metrics.commands_sent.inc()
                log.info("asked Sparkplug node %s for a rebirth", topic.split("/", 2)[-1])

    def _rejected_row(self, builder: BatchBuilder, message: int, reason: str) -> RejectedRow:
        return RejectedRow(
            datetime.fromtimestamp(builder.received_us[message] / 1_000_000, UTC),
            _column_text(builder.topics[message]),
            _payload_text(builder.payloads[message], self.settings.ingest_reject_payload_chars),
            _column_text(reason),
        )

    def _record(
        self,
        builder: BatchBuilder,
        ts: npt.NDArray[np.datetime64],
        new: int,
        duplicates: int,
        seconds: float,
    ) -> None:
        metrics = self.metrics
        metrics.written.inc(new)
        metrics.duplicates.inc(duplicates)
        metrics.batch_readings.observe(new + duplicates)
        metrics.batch_seconds.observe(seconds)
        for reject in builder.rejects:
            metrics.rejected.labels(reject.kind).inc()
        if len(ts):
            newest_us = int(ts.max().astype("int64"))
            metrics.lag_seconds.set(time.time() - newest_us / 1_000_000)

    async def _refresh_mapping(self, pool: AsyncConnectionPool, source: MqttSource) -> None:
        async with pool.connection() as conn:
            if await site_version(conn) == self.mapping.version:
                return
            self.mapping = await load_meter_map(conn)
        self.decoder = self._decoder(self.mapping)
        source.subscribe(self._subscriptions(self.mapping).hold)
        log.info("site reloaded: %d meters mapped", len(self.mapping.by_topic))

    async def _rollups(self, pool: AsyncConnectionPool, backend: Backend) -> None:
        async with pool.connection() as conn:
            await refresh_dirty_rollups(conn, backend)

    async def _log_summary(self) -> None:
        log.info("ingest worker %s: %s", self.index, self.metrics.summary())

    @staticmethod
    async def _every(
        period_s: float, chore: Callable[[], Awaitable[None]], stop: asyncio.Event
    ) -> None:
        """Run a chore periodically; a failure is logged, never fatal to the worker."""
        while not stop.is_set():
            await asyncio.sleep(period_s)
            try:
                await chore()
            except (EnergyhubError, psycopg.Error, OSError) as exc:
                log.warning("periodic %s failed: %s", getattr(chore, "__name__", "chore"), exc)
