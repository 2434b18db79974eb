"""Health (database, broker, ingest lag) and Prometheus metrics; both answer without a key."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from energyhub.api.deps import StateDep
from energyhub.api.schemas.health import HealthPublic
from energyhub.errors import ConfigError
from energyhub.mqtt import parse_mqtt_url
from energyhub.store.devices import offline_devices
from energyhub.store.queries import newest_reading_at

router = APIRouter(tags=["health"])

BROKER_TIMEOUT_S = 1.0
"""A broker that does not accept a TCP connection within this counts as unreachable."""


async def _broker_reachable(url: str | None) -> bool | None:
    if not url:
        return None
    try:
        endpoint = parse_mqtt_url(url)
        # asyncio.wait_for, not waiting.within: a cancellation it drops here is raised by the
        # handler's gather all the same, and within would drop the open connection instead
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(endpoint.host, endpoint.port), BROKER_TIMEOUT_S
        )
    except (OSError, TimeoutError, ConfigError):
        return False
    writer.close()
    return True


async def _database(state: StateDep) -> tuple[float | None, datetime | None, list[str]]:
    """Round-trip milliseconds, the newest reading's time and the field devices that do not
    answer; (None, None, []) if unreachable."""
    started = time.perf_counter()
    try:
        async with state.pool.connection(timeout=2) as conn:
            newest = await newest_reading_at(conn)
            latency_ms = (time.perf_counter() - started) * 1000
            offline = await offline_devices(conn)
    except Exception:  # any failure here means: not reachable now
        return None, None, []
    return latency_ms, newest, offline


@router.get(
    "/health",
    response_model=HealthPublic,
    responses={503: {"model": HealthPublic, "description": "The database is unreachable"}},
    summary="Database and broker reachable, ingest lag",
)
async def health(state: StateDep) -> JSONResponse:
    (latency_ms, newest, offline), broker = await asyncio.gather(
        _database(state), _broker_reachable(state.settings.mqtt_url)
    )
    lag = (datetime.now(UTC) - newest).total_seconds() if newest else None
    status = "down" if latency_ms is None else "ok"
    if status == "ok" and (broker is False or newest is None or offline):
        status = "degraded"
    body = HealthPublic(
        status=status,
        database_reachable=latency_ms is not None,
        database_latency_ms=latency_ms,
        broker_configured=state.settings.mqtt_url is not None,
        broker_reachable=broker,
        newest_reading_at=newest,
        ingest_lag_s=lag,
        field_devices_offline=offline,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=503 if status == "down" else 200)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
    summary="Prometheus metrics",
)
async def metrics(state: StateDep) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
