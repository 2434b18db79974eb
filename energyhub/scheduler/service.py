"""`energyhub scheduler`: re-plan every period, activate approved plans, send each step's
setpoints at its start, on whatever clock it is given.

Each tick, at a step boundary: plans whose horizon has passed expire; every scheduled site whose
last re-plan is a period old is re-planned from this step; the newest approved plan that covers
now becomes active; the active plan's setpoints of this step are claimed and published. A plan
awaiting an operator's approval sends nothing. One scheduler per database: it confirms the
scheduler lock (`lock.py`) before each tick.

A database outage is expected: each failed attempt is one warning naming the cause, retried with
backoff (sooner at a step boundary), and the recovery one info line; only an unexpected error
logs a traceback. Each tick opens its own connection, so an outage leaves no broken one behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

import aiomqtt
import pandas as pd
import psycopg
from psycopg import AsyncConnection

from energyhub.clock import Clock
from energyhub.config import Settings
from energyhub.errors import DatabaseUnavailableError, EnergyhubError, SchedulerLockError
from energyhub.localdays import step_floor
from energyhub.optimize.scope import resolve_scope
from energyhub.plans.operations import activate_due, last_horizon_start, unplanned_assets
from energyhub.plans.store import PlanRecord, expire_due, plan_steps
from energyhub.scheduler.co2_gate import Co2Gate
from energyhub.scheduler.guard import PeakGuard
from energyhub.scheduler.lock import SchedulerLock
from energyhub.scheduler.replan import (
    CREATED_BY,
    PlanningConfig,
    Target,
    replan,
    targets,
)
from energyhub.scheduler.setpoints import (
    SetpointPublisher,
    claim,
    mark_unconfirmed,
    settle,
    step_setpoints,
)
from energyhub.sites import SiteFile
from energyhub.store.db import Backend, connect, installed_backend
from energyhub.store.migrations import require_schema

log = logging.getLogger(__name__)

RECONNECT_FIRST_S = 1.0
"""First wait before trying the broker, or the database, again; it doubles on each failure."""
RECONNECT_MAX_S = 30.0
SCHEDULES_CACHED = 8
"""Schedules of recent plans kept in memory (a stored plan's schedule never changes)."""


@dataclass
class TickReport:
    """What one tick did."""

    at: datetime
    replanned: list[PlanRecord] = field(default_factory=list)
    active: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    overridden: int = 0
    """Setpoints the peak guard changed from the plan's (energyhub.scheduler.guard)."""
    gated: int = 0
    """Setpoints a CO₂ policy's gate changed: stores held idle and the machines that took their
    place (energyhub.scheduler.co2_gate)."""
    failed: list[str] = field(default_factory=list)
    replan_s: dict[str, float] = field(default_factory=dict)
    """Wall seconds each re-plan took (forecast, solve, store), by site."""
    tick_s: float = 0.0
    """Wall seconds the whole tick took."""


class Scheduler:
    """The receding-horizon loop over the scheduled sites of one site file."""

    def __init__(
        self,
        site: SiteFile,
        settings: Settings,
        clock: Clock,
        backend: Backend,
        publisher: SetpointPublisher,
    ) -> None:
        self.site, self.clock, self.backend, self.publisher = site, clock, backend, publisher
        self.config = PlanningConfig.of(settings, site=site)
        self.targets = targets(site, settings.scheduler_sites)
        self.prefix = settings.mqtt_topic_prefix.rstrip("/")
        self.db_url, self.db_timeout_s = settings.db_url, settings.db_connect_timeout_s
        self._last: dict[Target, datetime | None] = {}
        self._schedules: dict[int, tuple[pd.DataFrame, set[str]]] = {}
        self.guard = (
            PeakGuard(site.tz, self.config.step, settings.scheduler_peak_guard_headroom_kw)
            if settings.scheduler_peak_guard
            else None
        )
        self.import_limit = settings.scheduler_import_limit
        policy = site.city.carbon.plan_policy
        self.co2_gate = (
            Co2Gate(site, self.config.step)
            if policy is not None and policy.gate_stores_on_meters
            else None
        )

    async def resume(self, conn: AsyncConnection) -> None:
        """Pick up after a stop: its unfinished sends become unconfirmed, re-plans continue."""
        unconfirmed = await mark_unconfirmed(conn)
        if unconfirmed:
            log.warning("resuming: %s setpoint(s) were sent but not acknowledged", unconfirmed)
        for target in self.targets:
            self._last[target] = await last_horizon_start(conn, target.site_id, CREATED_BY)

    def next_wake(self, now: datetime) -> datetime:
        """The next step boundary after `now`."""
        return step_floor(now, self.config.step, self.site.tz) + self.config.step

    async def tick(self, conn: AsyncConnection) -> TickReport:
        """One pass: expire, re-plan what is due, activate, send this step's setpoints."""
        began = time.monotonic()
        now = self.clock.now()
        start = step_floor(now, self.config.step, self.site.tz)
        report = TickReport(now)
        await expire_due(conn, now)
        for target in self.targets:
            last = self._last.get(target)
            if last is None or start >= last + self.config.period:
                planning = time.monotonic()
                record = await replan(conn, self.backend, self.site, target, start, self.config)
                report.replan_s[target.site_id] = time.monotonic() - planning
                self._last[target] = start
                report.replanned.append(record)
            active = await activate_due(conn, target.site_id, now)
            if active is not None:
                report.active[target.site_id] = active.id
                await self._send(conn, active, start, report)
        report.tick_s = time.monotonic() - began
        return report

    async def _schedule(self, conn: AsyncConnection, plan_id: int) -> tuple[pd.DataFrame, set[str]]:
        """A plan's schedule and the assets it must not steer (cached: plans never change)."""
        if plan_id not in self._schedules:
            while len(self._schedules) >= SCHEDULES_CACHED:
                self._schedules.pop(next(iter(self._schedules)))
            schedule = await plan_steps(conn, plan_id)
            self._schedules[plan_id] = (schedule, await unplanned_assets(conn, plan_id))
        return self._schedules[plan_id]

    async def _send(
        self, conn: AsyncConnection, active: PlanRecord, start: datetime, report: TickReport
    ) -> None:
        """Claim, publish and settle each setpoint of the step starting at `start`."""
        scope = resolve_scope(self.site, active.level, active.site_id)
        schedule, skip = await self._schedule(conn, active.id)
        ts = pd.Timestamp(start)
        setpoints = step_setpoints(active.id, scope, schedule, ts, skip)
        gate = None
        if self.co2_gate is not None and setpoints:  # a CO₂ policy: stores on the day's slack
            gate = await self.co2_gate.open(conn, self.backend, scope, schedule, ts, setpoints)
            setpoints = gate.setpoints
            report.gated += sum(s.override is not None for s in setpoints)
        if self.guard is not None and setpoints:
            decision = await self.guard.check(
                conn, self.backend, scope, schedule, ts, setpoints,
                gate.locked if gate is not None else frozenset(),
            )  # fmt: skip
            if decision is not None:
                setpoints = decision.setpoints
                report.overridden += len(decision.overridden) - (
                    sum(s.override is not None for s in gate.setpoints) if gate is not None else 0
                )
            if self.import_limit:
                setpoints = await self.guard.import_limit(
                    conn, self.backend, scope, schedule, ts, setpoints
                )
        if self.co2_gate is not None and gate is not None:
            setpoints = self.co2_gate.close(scope, schedule, ts, gate, setpoints)
        for setpoint in setpoints:
            topic = setpoint.topic(self.prefix)
            if not await claim(conn, setpoint, topic):
                continue
            try:
                await self.publisher.publish(topic, setpoint.payload(self.site.tz))
            except aiomqtt.MqttError as exc:
                await settle(conn, setpoint, f"{type(exc).__name__}: {exc}")
                report.failed.append(topic)
                raise
            await settle(conn, setpoint)
            report.sent += 1

    async def run(self, stop: asyncio.Event, lock: SchedulerLock) -> None:
        """Tick at every step boundary until `stop` while `lock` is ours; a failing tick is
        logged and retried; SchedulerLockError once another scheduler took the lock."""
        if not self.db_url:
            raise EnergyhubError("the scheduler needs ENERGYHUB_DB_URL")
        resumed = False
        outage = Outage()
        while not stop.is_set():
            began = self.clock.now()
            wake = self.next_wake(began)  # at once if a slow tick passed it
            retry_s: float | None = None
            try:
                await lock.confirm()
                async with connect(self.db_url, self.db_timeout_s) as conn:
                    if not resumed:
                        await self.resume(conn)
                        resumed = True
                    report = await self.tick(conn)
                outage.ended()
                _log(report)
            except aiomqtt.MqttError:
                raise  # the broker is gone: reconnect (`run_scheduler`)
            except SchedulerLockError:
                raise  # another scheduler runs now
            except (DatabaseUnavailableError, psycopg.OperationalError) as exc:
                retry_s = outage.failed(exc)
            except Exception:  # the loop outlives any one tick: a bad forecast, a bug
                log.exception("scheduler tick failed; retrying at the next step")
            await _sleep(self.clock, wake, retry_s, stop)


class Outage:
    """A database outage as the log tells it: one warning per failed attempt, with a backoff
    delay that doubles up to RECONNECT_MAX_S, and one info line when the database is back."""

    def __init__(self) -> None:
        self.failures = 0
        self.started_s = 0.0

    def failed(self, exc: Exception) -> float:
        """Log the failure (its cause, no traceback); the seconds to wait before the next try."""
        if not self.failures:
            self.started_s = asyncio.get_running_loop().time()
        delay_s = min(RECONNECT_FIRST_S * 2.0**self.failures, RECONNECT_MAX_S)
        self.failures += 1
        log.warning("database unavailable: %s; retrying in %.0f s", _cause(exc), delay_s)
        return delay_s

    def ended(self) -> None:
        if self.failures:
            log.info(
                "database available again after %s failed attempt(s) over %.0f s",
                self.failures,
                asyncio.get_running_loop().time() - self.started_s,
            )
        self.failures = 0


def _cause(exc: Exception) -> str:
    """What the driver said, in one line."""
    if isinstance(exc, DatabaseUnavailableError):
        return exc.reason
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def _sleep(clock: Clock, wake: datetime, retry_s: float | None, stop: asyncio.Event) -> None:
    """Until `wake` on the clock, `retry_s` wall seconds (if given) or `stop`, whichever first."""
    waits = [asyncio.create_task(clock.sleep_until(wake)), asyncio.create_task(stop.wait())]
    if retry_s is not None:
        waits.append(asyncio.create_task(asyncio.sleep(retry_s)))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


def _log(report: TickReport) -> None:
    if report.replanned or report.sent or report.failed:
        log.info(
            "%s: re-planned %s, active %s, sent %s setpoint(s)%s%s",
            report.at.isoformat(),
            [
                f"{r.site_id}#{r.id} {r.status} in {report.replan_s.get(r.site_id, 0.0):.1f} s"
                for r in report.replanned
            ]
            or "nothing",
            report.active or "none",
            report.sent,
            f" ({report.overridden} by the peak guard)" if report.overridden else "",
            f", failed {report.failed}" if report.failed else "",
            extra={"tick": report},
        )


async def run_scheduler(
    settings: Settings, site: SiteFile, clock: Clock, stop: asyncio.Event
) -> None:
    """Hold the scheduler lock, then run on `clock` until `stop`; reconnect to the broker."""
    if not settings.db_url or not settings.mqtt_url:
        raise EnergyhubError("the scheduler needs ENERGYHUB_DB_URL and ENERGYHUB_MQTT_URL")
    async with connect(settings.db_url, settings.db_connect_timeout_s) as conn:
        await require_schema(conn)
        backend = await installed_backend(conn)
    async with SchedulerLock(settings.db_url, settings.db_connect_timeout_s) as lock:
        await _with_broker(settings, site, clock, backend, lock, stop)


async def _with_broker(
    settings: Settings,
    site: SiteFile,
    clock: Clock,
    backend: Backend,
    lock: SchedulerLock,
    stop: asyncio.Event,
) -> None:
    assert settings.mqtt_url is not None  # noqa: S101 - run_scheduler checked it
    delay = RECONNECT_FIRST_S
    client_id = f"{settings.mqtt_client_id_prefix}-scheduler"
    while not stop.is_set():
        try:
            async with SetpointPublisher(
                settings.mqtt_url, client_id, settings.scheduler_publish_timeout_s
            ) as publisher:
                delay = RECONNECT_FIRST_S
                await Scheduler(site, settings, clock, backend, publisher).run(stop, lock)
        except aiomqtt.MqttError as exc:
            log.error("MQTT broker: %s; reconnecting in %.0f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)
