"""`energyhub demo`: the whole system on embedded defaults, from a bare machine.

Private PostgreSQL and Mosquitto when no URLs are configured; the example park simulated at full
speed through MQTT into the database by an ingest worker; then what a manager would look at.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
from psycopg import AsyncConnection
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from energyhub.config import Settings
from energyhub.embedded_broker import embedded_mosquitto
from energyhub.ingest.worker import IngestWorker
from energyhub.plans.store import PlanRecord
from energyhub.render import site_summary, site_tree, sync_summary
from energyhub.scheduler.replan import PlanningConfig, replan, targets
from energyhub.scheduler.service import step_floor
from energyhub.sites import SiteFile
from energyhub.store.db import Backend, connect, installed_backend, mask_url
from energyhub.store.embedded import embedded_postgres
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.migrations import migrate_with
from energyhub.store.queries import parse_step, site_series
from energyhub.store.sync import sync_site
from simulators.durations import default_start
from simulators.mqtt import MqttUrl
from simulators.simulate import SimulationOptions, SimulationSummary, simulate

DEMO_STEP_S = 60.0
CATCH_UP_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class DemoServices:
    db_url: str
    mqtt_url: str


@asynccontextmanager
async def demo_services(settings: Settings, console: Console) -> AsyncIterator[DemoServices]:
    """The configured database and broker, or private ones started for the demo."""
    async with AsyncExitStack() as stack:
        db_url, mqtt_url = settings.db_url, settings.mqtt_url
        if not db_url:
            with console.status("starting a private PostgreSQL (no ENERGYHUB_DB_URL set)"):
                db_url = (await stack.enter_async_context(embedded_postgres())).url
            console.print(f"private PostgreSQL at {db_url} (removed when the demo ends)")
        if not mqtt_url:
            mqtt_url = await stack.enter_async_context(embedded_mosquitto())
            console.print(f"private Mosquitto at {mqtt_url} (removed when the demo ends)")
        yield DemoServices(db_url, mqtt_url)


async def _simulate(
    site: SiteFile, mqtt_url: str, days: float, console: Console
) -> SimulationSummary:
    duration_s = days * 86_400
    start = default_start(datetime.now(UTC), duration_s, DEMO_STEP_S, None)
    endpoint = MqttUrl.parse(mqtt_url)
    options = SimulationOptions(
        site, start, duration_s, DEMO_STEP_S, speed=None, seed=7, url=endpoint
    )
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"simulating {days:g} days of the park", total=options.steps)
        summary = await simulate(options, lambda done: progress.update(task, completed=done))
    console.print(
        f"simulated {days:g} days at 1-min steps: {summary.published:,} messages in "
        f"{summary.wall_s:.1f} s"
    )
    return summary


async def _caught_up(worker: IngestWorker, published: int) -> None:
    """Until the worker has received and committed everything the simulator published."""
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    metrics = worker.metrics
    while time.monotonic() < deadline:
        received = metrics.value("energyhub_ingest_messages_received_total")
        batches = metrics.value("energyhub_ingest_batch_seconds_count")
        if received >= published and worker.source.pending == 0 and batches:
            await asyncio.sleep(2 * worker.settings.ingest_flush_s)
            return
        await asyncio.sleep(0.2)


async def _ingest_stage(
    settings: Settings, mqtt_url: str, site: SiteFile, days: float, console: Console
) -> tuple[IngestWorker, float]:
    """An ingest worker in this process while the simulator publishes; returns it and seconds."""
    worker = IngestWorker(settings.model_copy(update={"ingest_metrics_port": 0}))
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    ready = asyncio.create_task(worker.ready.wait())
    await asyncio.wait([running, ready], return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        running.result()
    started = time.monotonic()
    summary = await _simulate(site, mqtt_url, days, console)
    await _caught_up(worker, summary.published)
    seconds = time.monotonic() - started
    stop.set()
    await running
    return worker, seconds


def _load_table(frames: dict[str, pd.DataFrame]) -> Table:
    table = Table(title="load per park, last 24 h (from the 1-hour rollups)")
    for column in (
        "park",
        "electricity kWh",
        "peak kW",
        "heat kWh",
        "cooling kWh",
        "gas kWh",
        "PV kWh",
    ):
        table.add_column(column, justify="right")
    for park, frame in frames.items():
        by_carrier = frame.groupby("carrier")["power_kw"]
        energy = by_carrier.sum()
        peak = by_carrier.max()
        table.add_row(
            park,
            f"{energy.get('electricity', 0):,.0f}",
            f"{peak.get('electricity', 0):,.0f}",
            *(f"{energy.get(c, 0):,.0f}" for c in ("heat", "cooling", "gas", "pv")),
        )
    return table


async def run_demo(settings: Settings, site: SiteFile, console: Console, days: float = 2.0) -> None:
    """Start what is not configured, migrate, load the site, simulate and ingest, summarize."""
    async with demo_services(settings, console) as services:
        settings = settings.model_copy(
            update={"db_url": services.db_url, "mqtt_url": services.mqtt_url}
        )
        async with connect(services.db_url, settings.db_connect_timeout_s) as conn:
            migration = await migrate_with(conn, settings)
            console.print(
                f"schema version {migration.current_version} on {migration.backend.value} "
                f"at {mask_url(services.db_url)}"
            )
            console.print(sync_summary(await sync_site(conn, site)))
        console.print(site_tree(site))
        console.print(f"site file: {site_summary(site)}")
        worker, seconds = await _ingest_stage(settings, services.mqtt_url, site, days, console)
        written = worker.metrics.value("energyhub_ingest_readings_written_total")
        console.print(
            f"ingest: {worker.metrics.summary()} — {written / seconds:,.0f} readings/s end to end"
        )
        async with connect(services.db_url, settings.db_connect_timeout_s) as conn:
            backend = await installed_backend(conn)
            await refresh_rollups(conn, backend)
            console.print(_load_table(await _park_loads(conn, backend, site)))
            with console.status("forecasting from the telemetry and planning the next 24 h"):
                records = await _plans(conn, backend, site, settings)
            console.print(_plans_table(records))


DEMO_PLAN_TARGETS = ["b01", "expo"]
"""A building and a park; the city level is planned by `energyhub plan --level city`."""


async def _plans(
    conn: AsyncConnection, backend: Backend, site: SiteFile, settings: Settings
) -> list[PlanRecord]:
    """Forecast from the ingested telemetry and plan each demo target, as the scheduler does."""
    config = PlanningConfig.of(settings)
    start = step_floor(datetime.now(UTC), config.step)
    return [
        await replan(conn, backend, site, target, start, config)
        for site_id in DEMO_PLAN_TARGETS  # one at a time: a building and its park overlap
        for target in targets(site, [site_id])
    ]


def _plans_table(records: list[PlanRecord]) -> Table:
    table = Table(title="plans for the next 24 h (forecast from the last two days)")
    for column in (
        "plan",
        "site",
        "status",
        "cost CNY",
        "baseline CNY",
        "CO₂ kg",
        "baseline CO₂ kg",
    ):
        table.add_column(column, justify="right")
    for record in records:
        baseline = record.baseline or {}
        table.add_row(
            str(record.id),
            f"{record.level} {record.site_id}",
            record.status if not record.error else f"{record.status}: {record.error[:60]}",
            _number(record.objective_cny),
            _number(baseline.get("cost_cny")),
            _number(record.co2_kg),
            _number(baseline.get("co2_kg")),
        )
    return table


def _number(value: object) -> str:
    return f"{value:,.0f}" if isinstance(value, int | float) else "—"


async def _park_loads(
    conn: AsyncConnection, backend: Backend, site: SiteFile
) -> dict[str, pd.DataFrame]:
    """Hourly power per carrier of each park over the last whole 24 hours."""
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start, step = end - timedelta(days=1), parse_step("1h")
    return {
        park.id: await site_series(conn, backend, park.id, start, end, step, site.timezone)
        for park in site.city.parks
    }
