"""The `energyhub alerts` role: a pool, the notifiers, the evaluator loop, closed on every path."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta

import httpx

from energyhub.alerts.evaluator import Evaluator
from energyhub.alerts.notify import Dispatcher, MqttNotifier, Notifier, WebhookNotifier
from energyhub.clock import Clock
from energyhub.config import Settings
from energyhub.errors import ConfigError
from energyhub.sites import SiteFile
from energyhub.store.db import open_pool
from energyhub.store.migrations import require_schema
from energyhub.waiting import within

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 10.0
"""On stop, notifications still queued get this long to go out."""


@asynccontextmanager
async def notifiers(settings: Settings) -> AsyncIterator[list[Notifier]]:
    """MQTT when a broker is configured, the webhook when a URL is; closed on every path."""
    if settings.alerts_webhook_url and not settings.alerts_webhook_secret:
        raise ConfigError(
            "ENERGYHUB_ALERTS_WEBHOOK_SECRET is not set: webhook deliveries are signed with it"
        )
    out: list[Notifier] = []
    mqtt = None
    if settings.mqtt_url:
        client_id = f"{settings.mqtt_client_id_prefix}-alerts"
        mqtt = MqttNotifier(settings.mqtt_url, client_id, settings.mqtt_topic_prefix)
        out.append(mqtt)
    async with httpx.AsyncClient(timeout=settings.alerts_webhook_timeout_s) as http:
        if settings.alerts_webhook_url and settings.alerts_webhook_secret:
            out.append(
                WebhookNotifier(
                    http,
                    settings.alerts_webhook_url,
                    settings.alerts_webhook_secret,
                    settings.alerts_webhook_attempts,
                    settings.alerts_webhook_backoff_s,
                )
            )
        try:
            yield out
        finally:
            if mqtt is not None:
                await mqtt.close()


async def run_alerts(settings: Settings, site: SiteFile, clock: Clock, stop: asyncio.Event) -> None:
    """Evaluate every alert rule of the site until `stop` is set."""
    if not settings.db_url:
        raise ConfigError("ENERGYHUB_DB_URL is not set: alerts need the PostgreSQL URL")
    async with (
        open_pool(settings.db_url, max_size=2, timeout_s=settings.db_connect_timeout_s) as pool,
        notifiers(settings) as targets,
    ):
        async with pool.connection() as conn:
            await require_schema(conn)
        dispatcher = Dispatcher(targets)
        delivery = asyncio.create_task(dispatcher.run())
        grace = timedelta(seconds=settings.alerts_rollup_grace_s)
        evaluator = Evaluator(
            pool, site, clock, dispatcher, rollup_grace=grace,
            topic_prefix=settings.mqtt_topic_prefix,
        )  # fmt: skip
        try:
            await evaluator.run(stop, settings.alerts_tick_s, settings.alerts_reload_s)
            try:
                await within(dispatcher.drain(), DRAIN_TIMEOUT_S)
            except TimeoutError:
                log.warning("alert notifications still queued at stop were dropped")
        finally:
            delivery.cancel()
            with suppress(asyncio.CancelledError):
                await delivery
