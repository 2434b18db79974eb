"""`energyhub modbus` (poll gateways) and `energyhub devices` (which field devices answer)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.table import Table

from energyhub.cli_support import (
    configure_logging,
    console,
    fail,
    handles_errors,
    require_db_url,
    run_async,
    settings_or_exit,
)
from energyhub.config import Settings
from energyhub.ingest.supervisor import stop_on_signals
from energyhub.modbus.service import ModbusService
from energyhub.mqtt import parse_mqtt_url
from energyhub.store.db import connect
from energyhub.store.devices import PresenceChange, field_devices
from energyhub.store.migrations import require_schema


async def _poll(settings: Settings, index: int, workers: int, metrics_port: int) -> None:
    stop = asyncio.Event()
    stop_on_signals(stop)
    await ModbusService(settings, index, workers, metrics_port).run(stop)


@handles_errors
def modbus_command(
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, help="Pollers in the group.")
    ] = 1,
    worker_index: Annotated[
        int | None,
        typer.Option("--worker-index", min=0, help="This poller's index (with --workers N > 1)."),
    ] = None,
    metrics_port: Annotated[
        int, typer.Option("--metrics-port", min=0, max=65535, help="Prometheus /metrics; 0: off.")
    ] = 0,
) -> None:
    """Poll the site's Modbus TCP gateways; publish their meters' readings as MQTT frames."""
    settings = settings_or_exit()
    require_db_url(settings)
    if not settings.mqtt_url:
        raise fail("ENERGYHUB_MQTT_URL is not set: give the broker URL, e.g. mqtt://127.0.0.1:1883")
    parse_mqtt_url(settings.mqtt_url)
    if worker_index is None and workers > 1:
        raise fail(f"--workers {workers} needs --worker-index: which poller of the group is this?")
    worker_index = worker_index or 0
    if worker_index >= workers:
        raise fail(
            f"--worker-index {worker_index} is not a poller of a group of --workers {workers} "
            f"(0 … {workers - 1})"
        )
    configure_logging(settings)
    run_async(_poll(settings, worker_index, workers, metrics_port))


@handles_errors
def devices_command() -> None:
    """Field devices (Modbus gateways, Sparkplug nodes and devices): which answer, since when."""
    settings = settings_or_exit()
    url = require_db_url(settings)

    async def read() -> list[PresenceChange]:
        async with connect(url, settings.db_connect_timeout_s) as conn:
            await require_schema(conn)
            return await field_devices(conn)

    rows = run_async(read())
    if not rows:
        console.print(
            "no field device heard of yet (Modbus pollers and Sparkplug nodes report here)"
        )
        return
    table = Table("kind", "device", "state", "since", "detail")
    for row in rows:
        state = "[green]online[/]" if row.online else "[red]offline[/]"
        table.add_row(row.kind, row.key, state, row.at.isoformat(timespec="seconds"), row.detail)
    console.print(table)
