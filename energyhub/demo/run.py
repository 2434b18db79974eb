"""`energyhub demo`: the whole system on embedded defaults, from a bare machine.

Private PostgreSQL and Mosquitto when no URLs are configured; two days of the example park
simulated at full speed through MQTT into the database by an ingest worker; a forecast and plans
for a building, a park and the city; then a simulated day at high speed with the scheduler
re-planning and sending setpoints that the simulated devices follow; plan vs actual; the API
served until Ctrl-C (SIGINT or SIGTERM), which stops the API, the broker and the database.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import Progress

from energyhub.api.keys import create_key
from energyhub.config import Settings
from energyhub.demo.actuals import site_actuals
from energyhub.demo.live import HISTORY_DAYS, SEED, SIM_STEP_S, Timeline, simulated_world
from energyhub.demo.planning import LevelPlan, plan_levels
from energyhub.demo.serve import available_port, serving
from energyhub.demo.services import (
    caught_up,
    committed,
    demo_services,
    ingesting,
    keeping_up,
    settled,
)
from energyhub.demo.summary import (
    IngestFigures,
    actual_table,
    ingest_table,
    load_table,
    plans_table,
)
from energyhub.demo.weather import feed_weather_forecast
from energyhub.ingest.worker import IngestWorker
from energyhub.localdays import step_floor
from energyhub.numbers import figure
from energyhub.render import site_summary, site_tree, sync_summary
from energyhub.scheduler.replan import PlanningConfig
from energyhub.sites import SiteFile, unmetered_note
from energyhub.store.db import connect, installed_backend, mask_url
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.migrations import migrate_with
from energyhub.store.queries import parse_step, site_series
from energyhub.store.sync import sync_site

SCHEDULER_PERIOD_MIN = 240.0
"""Re-plan every 4 simulated hours, as the closed-loop benchmark does."""
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class DemoOptions:
    serve: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    history_days: float = HISTORY_DAYS
    live_hours: float = 24.0


@dataclass
class _State:
    summarized: bool = False


async def run_demo(
    settings: Settings, site: SiteFile, site_path: Path, console: Console, options: DemoOptions
) -> int:
    """Run the demo; SIGINT or SIGTERM stops it and what it started. Returns the exit status:
    0, or 130 when stopped before the summary."""
    state = _State()
    work = asyncio.create_task(_demo(settings, site, site_path, console, options, state))
    stopping = _cancel_on_signals(work)
    try:
        await work
    except asyncio.CancelledError:
        if not stopping.is_set():
            raise
        if not state.summarized:
            console.print("interrupted: everything the demo started is stopped")
            return EXIT_INTERRUPTED
        console.print("stopped: the API, and the broker and database if the demo started them")
        return 0
    return 0


def _cancel_on_signals(task: asyncio.Task[None]) -> asyncio.Event:
    """Cancel `task` at the first SIGINT or SIGTERM (a second one does not cut its cleanup)."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def stop() -> None:
        if not stopping.is_set():
            stopping.set()
            task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    return stopping


def auto_approved(site: SiteFile) -> SiteFile:
    """The site with every park's plans approved on solve, so the scheduler acts on its own."""
    parks = [p.model_copy(update={"plan_approval": "auto"}) for p in site.city.parks]
    return site.model_copy(update={"city": site.city.model_copy(update={"parks": parks})})


async def _demo(
    settings: Settings,
    site: SiteFile,
    site_path: Path,
    console: Console,
    options: DemoOptions,
    state: _State,
) -> None:
    live = timedelta(hours=options.live_hours)
    live_start = step_floor(datetime.now(UTC) - live, parse_step(settings.scheduler_step), site.tz)
    timeline = Timeline(live_start, timedelta(days=options.history_days), live)
    async with demo_services(settings, console) as services:
        settings = settings.model_copy(
            update={
                "db_url": services.db_url,
                "mqtt_url": services.mqtt_url,
                "site_file": site_path,
                "scheduler_period_min": SCHEDULER_PERIOD_MIN,
            }
        )
        await _prepare(settings, auto_approved(site), console)
        stages = _Stages(settings, site, timeline, console)
        async with ingesting(settings) as worker:
            stages.worker = worker
            with Progress(console=console) as progress:
                summary = await simulated_world(
                    settings, site, timeline, progress, stages.after_history, keeping_up(worker),
                    committed(worker),
                )  # fmt: skip
            # the worker also receives the scheduler's setpoints, which the simulator counted
            stages.published = summary.published + sum(summary.setpoints.values())
            with console.status("ingest catching up"):
                stages.lost = await caught_up(worker, stages.published)
        ignored = {k: n for k, n in summary.setpoints.items() if k != "accepted"}
        console.print(
            f"scheduler: {options.live_hours:g} simulated h in "
            f"{figure(summary.wall_s - stages.history_s - stages.plans_s, 0)} s, re-planning every "
            f"{SCHEDULER_PERIOD_MIN / 60:g} h; the simulated devices took "
            f"{summary.setpoints.get('accepted', 0):,} setpoints"
            + (f", left {ignored}" if ignored else "")
        )
        window = (live_start, live_start + live)
        await _summary(settings, site, window, stages.plans, stages.figures(worker), console)
        state.summarized = True
        if options.serve:
            await _serve(settings, site, options, stages.plans, console)
        else:
            console.print("--no-serve: the API was not started; stopping the broker and database")


async def _prepare(settings: Settings, site: SiteFile, console: Console) -> None:
    """Migrate, load the site (parks on `plan_approval: auto`), print the tree."""
    assert settings.db_url is not None  # noqa: S101 - set by demo_services
    async with connect(settings.db_url, settings.db_connect_timeout_s) as conn:
        migration = await migrate_with(conn, settings)
        console.print(
            f"schema version {migration.current_version} on {migration.backend.value} "
            f"at {mask_url(settings.db_url)}"
        )
        console.print(sync_summary(await sync_site(conn, site)))
    console.print(site_tree(site))
    console.print(f"site file: {site_summary(site)}")
    console.print("parks on plan_approval: auto for the demo, so the scheduler acts on its own")


class _Stages:
    """What runs between the history and the live day: catch up, plan; and the figures of both."""

    def __init__(
        self, settings: Settings, site: SiteFile, timeline: Timeline, console: Console
    ) -> None:
        self.settings, self.site, self.timeline, self.console = settings, site, timeline, console
        self.worker: IngestWorker | None = None
        self.plans: list[LevelPlan] = []
        self.started = time.monotonic()
        self.history_s = self.plans_s = 0.0
        self.history_readings = 0.0
        self.published = self.lost = 0

    async def after_history(self) -> None:
        """Once the history is published: wait for the ingest, then forecast and plan."""
        assert self.worker is not None  # noqa: S101 - set before the simulation starts
        await settled(self.worker)
        self.history_s = time.monotonic() - self.started
        self.history_readings = self.worker.metrics.value("energyhub_ingest_readings_written_total")
        self.console.print(
            f"history: {self.timeline.history_steps:,} 1-min steps, "
            f"{self.history_readings:,.0f} readings stored in {self.history_s:.1f} s"
        )
        began = time.monotonic()
        await _feed_weather(self.settings, self.site, self.timeline)
        self.plans = await _plans(self.settings, self.site, self.timeline.live_start, self.console)
        self.plans_s = time.monotonic() - began

    def figures(self, worker: IngestWorker) -> IngestFigures:
        metrics = worker.metrics
        rejected = sum(
            sample.value
            for metric in metrics.rejected.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        )
        return IngestFigures(
            published=self.published,
            lost=self.lost,
            messages=metrics.value("energyhub_ingest_messages_received_total"),
            readings=metrics.value("energyhub_ingest_readings_written_total"),
            duplicates=metrics.value("energyhub_ingest_readings_duplicate_total"),
            rejected=rejected,
            burst_readings=self.history_readings,
            burst_s=self.history_s,
        )


async def _feed_weather(settings: Settings, site: SiteFile, timeline: Timeline) -> None:
    """The simulator's weather as the parks' weather forecast (forecast/weather input)."""
    assert settings.db_url is not None  # noqa: S101 - set by demo_services
    start = timeline.live_start - timeline.history
    steps = timeline.history_steps + timeline.live_steps
    async with connect(settings.db_url, settings.db_connect_timeout_s) as conn:
        await feed_weather_forecast(conn, site, start, SIM_STEP_S, steps, SEED)


async def _plans(
    settings: Settings, site: SiteFile, start: datetime, console: Console
) -> list[LevelPlan]:
    """Forecast from the history and plan a building, a park and the city from `start`."""
    assert settings.db_url is not None  # noqa: S101 - set by demo_services
    config = PlanningConfig.of(settings, site=site)
    async with connect(settings.db_url, settings.db_connect_timeout_s) as conn:
        backend = await installed_backend(conn)
        await refresh_rollups(conn, backend)
        with console.status("forecasting and planning a building, a park and the city"):
            plans = await plan_levels(conn, backend, site, start, config)
    console.print(
        f"planned from {_local(start, site)}: "
        + ", ".join(f"{p.record.level} {p.record.site_id} {p.record.status}" for p in plans)
    )
    return plans


async def _summary(
    settings: Settings,
    site: SiteFile,
    window: tuple[datetime, datetime],
    plans: list[LevelPlan],
    figures: IngestFigures,
    console: Console,
) -> None:
    """Load per park and plan vs actual over the scheduler's day, the plans, ingest."""
    assert settings.db_url is not None  # noqa: S101 - set by demo_services
    async with connect(settings.db_url, settings.db_connect_timeout_s) as conn:
        backend = await installed_backend(conn)
        await refresh_rollups(conn, backend)
        step = parse_step("1h")
        hours = (window[0].replace(minute=0), window[1].replace(minute=0))
        loads = {
            park.id: await site_series(conn, backend, park.id, *hours, step, site.timezone)
            for park in site.city.parks
        }
        actuals = await site_actuals(conn, backend, site, settings.scheduler_sites, window)
    span = f"{_local(window[0], site)} – {_local(window[1], site)}"
    console.rule("summary")
    unmetered = unmetered_note(site.unmetered_electricity(site.city.id))
    console.print(load_table(loads, f"load per park, {span} (hourly rollups)", unmetered))
    methods = ", ".join(f"{p.record.level} {p.method}" for p in plans)
    console.print(
        plans_table(plans, f"plans from {_local(window[0], site)} vs the rule-based baseline")
    )
    console.print(f"methods: {methods} (central: one MILP each)")
    console.print(actual_table(actuals, f"plan vs actual under the scheduler, {span}", unmetered))
    console.print(ingest_table(figures))
    if figures.lost:
        console.print(
            f"[bold red]the broker dropped {figures.lost:,} of {figures.published:,} messages "
            "before the ingest got them[/]: a stock Mosquitto queues 1,000 messages per client "
            "(max_queued_messages); deploy/mosquitto.conf shows the settings that lose nothing"
        )


async def _serve(
    settings: Settings,
    site: SiteFile,
    options: DemoOptions,
    plans: list[LevelPlan],
    console: Console,
) -> None:
    """Serve the API with a fresh admin key until the demo is cancelled (Ctrl-C, SIGTERM)."""
    assert settings.db_url is not None  # noqa: S101 - set by demo_services
    async with connect(settings.db_url, settings.db_connect_timeout_s) as conn:
        key, token = await create_key(conn, "admin", site.city.id, "energyhub demo")
    port = available_port(options.host, options.port)
    async with serving(settings, options.host, port) as (url, ui):
        console.rule("serving")
        print_serving(console, url, ui, f"{key.id} of {key.site_id}", token, plans)
        console.print("Ctrl-C stops the API, the broker and the database", style="bold")
        await asyncio.Event().wait()  # until cancelled


def print_serving(
    console: Console, url: str, ui: bool, key: str, token: str, plans: list[LevelPlan]
) -> None:
    """Where the API is and how to call it; soft-wrapped, so that no width breaks a URL or the key
    in a terminal, a log file or `tee` (copy and paste gets the whole line)."""
    lines = [f"API       {url}   (GET /health answers without a key)", f"docs      {url}/docs"]
    if ui:
        lines.append(f"plan UI   {url}/ui")
    lines.append(f"admin key {token}   (key {key}, shown once)")
    lines.append(f'try       curl -H "Authorization: Bearer {token}" {url}/sites')
    lines.extend(
        f"plan #{draft.id} ({draft.level} {draft.site_id}) awaits an operator: "
        f"POST {url}/plans/{draft.id}/approve"
        for draft in (p.record for p in plans if p.record.status == "draft")
    )
    for line in lines:
        console.print(line, soft_wrap=True)


def _local(when: datetime, site: SiteFile) -> str:
    return pd.Timestamp(when).tz_convert(site.tz).strftime("%Y-%m-%d %H:%M")
