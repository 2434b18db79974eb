"""The simulated park: its history at full speed, then live days with the scheduler steering
it: the simulated devices follow the setpoints it sends over MQTT, their readings come back
through the ingest. One simulation, so counters and storage carry on from the history.

The live part runs in lockstep: the simulator waits at each plan step for the scheduler's tick,
as field devices in operation wait no time for a re-plan that takes seconds of a 15-minute step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from rich.progress import Progress

from energyhub.clock import LockstepClock
from energyhub.config import Settings
from energyhub.errors import EmbeddedServiceError
from energyhub.plans.actual import Account, over_days, savings_by_day
from energyhub.plans.realized import Realized
from energyhub.scheduler.replan import targets
from energyhub.scheduler.service import run_scheduler
from energyhub.scheduler.setpoints import acked_count
from energyhub.sites import SiteFile
from energyhub.store.db import Backend, connect, installed_backend
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.queries import parse_step
from simulators.mqtt import MqttUrl
from simulators.simulate import SimulationOptions, SimulationSummary, simulate

SIM_STEP_S = 60.0
SEED = 7
LOCKSTEP_TIMEOUT_S = 600.0
"""Longest wall wait in lockstep for a scheduler's tick, or for its setpoints to arrive."""


@dataclass(frozen=True)
class SiteActual:
    """One scheduled site over the live day: setpoints sent, plans it ran, the realized account."""

    site_id: str
    setpoints: int
    plans: int
    steps: int
    planned: Account | None
    actual: Account | None
    baseline: Account | None
    realized: Realized | None = None


@dataclass(frozen=True)
class Timeline:
    """History at full speed up to `live_start`, then `live` steered by the scheduler."""

    live_start: datetime
    history: timedelta
    live: timedelta

    @property
    def history_steps(self) -> int:
        return int(self.history.total_seconds() // SIM_STEP_S)

    @property
    def live_steps(self) -> int:
        return int(self.live.total_seconds() // SIM_STEP_S)


async def simulated_world(
    settings: Settings,
    site: SiteFile,
    timeline: Timeline,
    progress: Progress,
    between: Callable[[], Awaitable[None]],
    backlog: Callable[[int], Awaitable[None]],
    stored: Callable[[int], Awaitable[None]],
) -> SimulationSummary:
    """One simulation: the history as fast as ingest takes it (`backlog` holds each step back
    until it has nearly caught up), then `between` (the demo's plans), then the live part in
    lockstep with the scheduler: at each of its step boundaries the simulator holds its next
    step until the readings before it are committed (`stored` waits for that) and rolled up,
    the scheduler's tick at the boundary has run and the setpoints it sent have reached the
    devices. Every step is then steered as in operation, where a re-plan takes seconds of a
    15-minute step, whatever the machine running the simulation takes for it."""
    assert settings.db_url is not None  # noqa: S101 - the demo's services set it
    options = SimulationOptions(
        site, timeline.live_start - timeline.history,
        (timeline.history + timeline.live).total_seconds(), SIM_STEP_S, speed=None,
        seed=SEED, url=MqttUrl.parse(str(settings.mqtt_url)), prefix=settings.mqtt_topic_prefix,
        fast_steps=timeline.history_steps,
    )  # fmt: skip
    days = timeline.history.total_seconds() / 86_400
    history = progress.add_task(
        f"simulating {days:g} days of history", total=timeline.history_steps
    )
    hours = timeline.live.total_seconds() / 3600
    live = progress.add_task(
        f"scheduler steering {hours:g} simulated h", total=timeline.live_steps, start=False
    )
    step = parse_step(settings.scheduler_step)
    clock = LockstepClock(timeline.live_start)
    started = asyncio.Event()

    def stepped(done: int) -> None:
        if done <= timeline.history_steps:
            progress.update(history, completed=done)
        else:
            progress.update(live, completed=done - timeline.history_steps)

    async def pause() -> None:
        await between()
        progress.start_task(live)

    async with connect(settings.db_url, settings.db_connect_timeout_s) as conn:
        backend = await installed_backend(conn)
        acked_before = await acked_count(conn)  # a database that ran a scheduler before

        async def gate(t: int, published: int, summary: SimulationSummary) -> None:
            await backlog(published)
            ts = options.start + timedelta(seconds=t * SIM_STEP_S)
            if (ts - timeline.live_start) % step:
                return
            await stored(published)
            await refresh_rollups(conn, backend)  # as the ingest does every few wall seconds
            started.set()  # the scheduler's first tick, at live_start, sees the whole history
            try:
                await asyncio.wait_for(clock.set(ts), LOCKSTEP_TIMEOUT_S)
            except TimeoutError:
                raise EmbeddedServiceError(
                    f"the scheduler's tick at {ts.isoformat()} did not end within "
                    f"{LOCKSTEP_TIMEOUT_S:.0f} s"
                ) from None
            await _heard(conn, summary, acked_before)

        simulation = asyncio.create_task(simulate(options, stepped, pause, backlog, gate))
        stop = asyncio.Event()
        tasks: list[asyncio.Task[Any]] = [simulation]
        try:
            await _first_live_step(simulation, started)
            scheduler = asyncio.create_task(run_scheduler(settings, site, clock, stop))
            tasks.append(scheduler)
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            stop.set()
            await scheduler  # raises if the scheduler stopped on an error
            return await simulation
        finally:  # also when cancelled: the simulator says offline, the scheduler lets go its lock
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _heard(conn: AsyncConnection, summary: SimulationSummary, acked_before: int) -> None:
    """Until the simulator has heard every setpoint the broker acknowledged since the live part
    began (or LOCKSTEP_TIMEOUT_S passed: they were lost on the way, and the devices run without
    them)."""
    deadline = time.monotonic() + LOCKSTEP_TIMEOUT_S
    sent = await acked_count(conn) - acked_before
    while time.monotonic() < deadline:
        if summary.setpoints_heard >= sent:
            return
        await asyncio.sleep(0.002)


async def _first_live_step(
    simulation: asyncio.Task[SimulationSummary], synced: asyncio.Event
) -> None:
    waiting = asyncio.create_task(synced.wait())
    await asyncio.wait([simulation, waiting], return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if not synced.is_set():
        simulation.result()  # raises what stopped it (a failed plan stage, a lost broker)
        raise EmbeddedServiceError("the simulation ended before its live part")


async def site_actuals(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    scheduled: list[str],
    window: tuple[datetime, datetime],
) -> list[SiteActual]:
    """Per scheduled site: its setpoints and plans in `window`, and the realized accounts."""
    found: list[SiteActual] = []
    for target in targets(site, scheduled):
        cur = await conn.execute(
            "SELECT count(*), count(DISTINCT s.plan_id) FROM setpoints AS s "
            "JOIN plans AS p ON p.id = s.plan_id "
            "WHERE p.site_id = %s AND s.ts >= %s AND s.ts < %s",
            (target.site_id, *window),
        )
        row = await cur.fetchone()
        setpoints, plans = (int(row[0]), int(row[1])) if row else (0, 0)
        days = await savings_by_day(conn, backend, target.site_id, window, site=site)
        found.append(
            SiteActual(
                target.site_id,
                setpoints,
                plans,
                sum(d.steps for d in days),
                _total([d.planned for d in days]),
                _total([d.actual for d in days]),
                _total([d.baseline for d in days]),
                over_days(days),
            )
        )
    return found


def _total(accounts: list[Account]) -> Account | None:
    """Accounts of consecutive days added up (the peak is the highest day's, the month-to-date
    peak the first day's)."""
    if not accounts:
        return None
    peaks = ("peak_import_kw", "month_peak_kw")
    summed = {
        name: sum(getattr(a, name) for a in accounts)
        for name in Account.model_fields
        if name not in peaks
    }
    return Account(
        peak_import_kw=max(a.peak_import_kw for a in accounts),
        month_peak_kw=accounts[0].month_peak_kw,
        **summed,
    )
