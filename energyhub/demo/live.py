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

from psycopg import AsyncConnection
from rich.progress import Progress

from energyhub.clock import LockstepClock, later
from energyhub.config import Settings
from energyhub.errors import EmbeddedServiceError
from energyhub.scheduler.service import run_scheduler
from energyhub.scheduler.setpoints import acked_count
from energyhub.sites import SiteFile
from energyhub.store.db import connect, installed_backend
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.queries import parse_step
from energyhub.waiting import within
from simulators.mqtt import MqttUrl
from simulators.simulate import SimulationOptions, SimulationSummary, simulate

SIM_STEP_S = 60.0
SEED = 7
HISTORY_DAYS = 14.0
"""Days of history before the live part. A deployed park has weeks of meter history; 14 days is
what the boosted demand model needs (7 to train, 7 held out: docs/forecasting.md). Learnt from 2
days (the demo's until 2026-12-07), the forecast and its bands measure a cold start: the demand
error was 5–20 % a day against 3.5–8 % with 14 (closed loop, 2026-12-06), and a demo run on a
Monday planned it from a weekend and lost money at Lingang (−4,509 CNY) where 14 days saved
2,079."""
LOCKSTEP_TIMEOUT_S = 600.0
"""Longest wall wait in lockstep for a scheduler's tick, or for its setpoints to arrive."""


@dataclass(frozen=True)
class Timeline:
    """History at full speed up to `live_start`, then `live` steered by the scheduler; the
    simulator publishes every `sim_step`."""

    live_start: datetime
    history: timedelta
    live: timedelta
    sim_step: timedelta = timedelta(seconds=SIM_STEP_S)

    @property
    def history_steps(self) -> int:
        return self.history // self.sim_step

    @property
    def live_steps(self) -> int:
        return self.live // self.sim_step


async def simulated_world(
    settings: Settings,
    site: SiteFile,
    timeline: Timeline,
    progress: Progress,
    between: Callable[[], Awaitable[None]],
    backlog: Callable[[int], Awaitable[None]],
    stored: Callable[[int], Awaitable[None]],
    restart_at: datetime | None = None,
) -> SimulationSummary:
    """One simulation: the history as fast as ingest takes it (`backlog` holds each step back
    until it has nearly caught up), then `between` (the demo's plans), then the live part in
    lockstep with the scheduler: at each of its step boundaries the simulator holds its next
    step until the readings before it are committed (`stored` waits for that) and rolled up,
    the scheduler's tick at the boundary has run and the setpoints it sent have reached the
    devices. Every step is then steered as in operation, where a re-plan takes seconds of a
    15-minute step, whatever the machine running the simulation takes for it. At `restart_at`
    (in the live part) the scheduler stops and a fresh one starts, as after a deploy."""
    assert settings.db_url is not None  # noqa: S101 - the demo's services set it
    if restart_at is not None and not timeline.live_start <= restart_at < later(
        timeline.live_start, timeline.live
    ):
        raise ValueError(f"restart_at must fall in the live part, got {restart_at.isoformat()}")
    sim_step_s = timeline.sim_step.total_seconds()
    options = SimulationOptions(
        site, timeline.live_start - timeline.history,
        (timeline.history + timeline.live).total_seconds(), sim_step_s, speed=None,
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
    steering = _Steering(settings, site, clock)
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
            ts = options.start + timedelta(seconds=t * sim_step_s)
            if (ts - timeline.live_start) % step:
                return
            # the ingest hears the setpoints the devices heard too: their count is what it owes
            await stored(published + summary.setpoints_heard)
            await refresh_rollups(conn, backend)  # as the ingest does every few wall seconds
            started.set()  # the scheduler's first tick, at live_start, sees the whole history
            await _tick(clock, ts)
            await _heard(conn, summary, acked_before)
            if restart_at is not None and ts <= restart_at < later(ts, step):
                await steering.restart(restart_at)
                await _heard(conn, summary, acked_before)

        simulation = asyncio.create_task(simulate(options, stepped, pause, backlog, gate))
        try:
            await _either(simulation, started)
            if not started.is_set():
                simulation.result()  # raises what stopped it (a failed plan stage, a lost broker)
                raise EmbeddedServiceError("the simulation ended before its live part")
            steering.start()
            await _either(simulation, steering.ended)
            await steering.stop()  # raises if the scheduler stopped on an error
            return await simulation
        finally:  # also when cancelled: the simulator says offline, the scheduler lets go its lock
            simulation.cancel()
            await asyncio.gather(simulation, steering.cancel(), return_exceptions=True)


class _Steering:
    """The scheduler on the lockstep clock, in a task of its own; `restart` replaces it by a
    fresh one, which picks up from what the database holds."""

    def __init__(self, settings: Settings, site: SiteFile, clock: LockstepClock) -> None:
        self.settings, self.site, self.clock = settings, site, clock
        self.ended = asyncio.Event()
        """Set when a scheduler stopped on its own (an error) rather than when asked to."""
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        stop = self._stop = asyncio.Event()
        self._task = asyncio.create_task(run_scheduler(self.settings, self.site, self.clock, stop))
        self._task.add_done_callback(lambda _: None if stop.is_set() else self.ended.set())

    async def stop(self) -> None:
        """Stop the scheduler; raises the error it stopped on, if it did."""
        self._stop.set()
        if self._task is not None:
            await self._task

    async def restart(self, at: datetime) -> None:
        """Stop the scheduler, move the clock to `at` and start a fresh one; return once its
        first tick has run."""
        await self.stop()
        self.start()
        await _tick(self.clock, at)

    async def cancel(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def _tick(clock: LockstepClock, ts: datetime) -> None:
    """Move the clock to `ts`; return once the scheduler's tick there has run."""
    try:
        await within(clock.set(ts), LOCKSTEP_TIMEOUT_S)
    except TimeoutError:
        raise EmbeddedServiceError(
            f"the scheduler's tick at {ts.isoformat()} did not end within "
            f"{LOCKSTEP_TIMEOUT_S:.0f} s"
        ) from None


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


async def _either(simulation: asyncio.Task[SimulationSummary], event: asyncio.Event) -> None:
    """Until the simulation ends or `event` is set."""
    waiting = asyncio.create_task(event.wait())
    await asyncio.wait([simulation, waiting], return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
