"""The whole loop on simulated time: the simulator publishes, ingest stores, the scheduler
forecasts, plans and sends setpoints, the simulated battery follows them, its SOC comes back.

A week of history goes through the real path at full speed first; then a simulated day runs at
`SPEED` simulated seconds per second, the scheduler on a clock a fraction of a step behind the
simulator's (its readings of a step are stored by the time the scheduler plans from them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from psycopg import AsyncConnection

from energyhub.clock import ScaledClock
from energyhub.config import Settings
from energyhub.ingest.worker import IngestWorker
from energyhub.optimize import plan
from energyhub.plans.actual import plan_vs_actual, savings_by_day
from energyhub.scheduler.lock import SchedulerLock
from energyhub.scheduler.service import Scheduler
from energyhub.scheduler.setpoints import SetpointPublisher
from energyhub.sites import SiteFile
from energyhub.store.db import Backend, connect
from energyhub.store.maintenance import refresh_rollups
from simulators.mqtt import MqttUrl
from simulators.simulate import SimulationOptions, simulate

from .conftest import (
    BATTERY_KWH,
    Broker,
    Received,
    collect_setpoints,
    make_site,
    prepare_db,
    scheduler_settings,
)

pytestmark = pytest.mark.timed  # a step every 0.94 s of wall time

STEP = timedelta(minutes=15)
SPEED = 960.0
"""Simulated seconds per wall second: a simulated day in 90 s, a step in 0.94 s."""
LAG = STEP * 0.25
"""How far the scheduler's clock runs behind the simulator's."""
SOC_TOLERANCE_KWH = 0.02 * BATTERY_KWH
READINGS_PER_STEP = 5
"""main, outdoor (frames); pv, bess-p, bess-soc (single readings)."""


def day_start(days_ago: int, tz: ZoneInfo) -> datetime:
    today = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


@asynccontextmanager
async def ingesting(settings: Settings) -> AsyncIterator[IngestWorker]:
    worker = IngestWorker(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(worker.ready.wait(), 30)
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def count(url: str, query: str, *params: object) -> int:
    async with connect(url) as conn:
        row = await (await conn.execute(query, params or None)).fetchone()
        return int(row[0]) if row else 0


async def wait_for_readings(url: str, expected: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while await count(url, "SELECT count(*) FROM readings") < expected:
        assert time.monotonic() < deadline, "the ingest did not store every reading in time"
        await asyncio.sleep(0.2)


@dataclass
class Run:
    site: SiteFile
    settings: Settings
    start: datetime
    steps: int


def _options(run: Run, start: datetime, steps: int, speed: float | None) -> SimulationOptions:
    return SimulationOptions(
        site=run.site,
        start=start,
        duration_s=steps * STEP.total_seconds(),
        step_s=STEP.total_seconds(),
        speed=speed,
        seed=3,
        url=MqttUrl.parse(str(run.settings.mqtt_url)),
        prefix=run.settings.mqtt_topic_prefix,
        reset_per_step=0.0,
    )


def warm_up(site: SiteFile) -> None:
    """Pay the first solve's one-time costs now, not in the first step of the simulated day."""
    index = pd.date_range("2025-01-06", periods=8, freq=STEP, tz="UTC", name="ts")
    inputs = pd.DataFrame({"office:electricity_kw": 500.0, "office-pv:available_kw": 0.0}, index)
    plan(site, inputs, level="building", site_id="office")


async def live_day(run: Run, restart_at: int | None) -> None:
    """Simulate `run.steps` steps at SPEED with the scheduler alongside (restarted once)."""
    warm_up(run.site)
    synced = asyncio.Event()
    clock: list[ScaledClock] = []

    def progress(done: int) -> None:
        if done == 1:  # step 0 is out: the simulator's clock stands at start + one step
            clock.append(ScaledClock(run.start + STEP - LAG, SPEED))
            synced.set()

    simulation = asyncio.create_task(simulate(_options(run, run.start, run.steps, SPEED), progress))
    await asyncio.wait_for(synced.wait(), 30)
    await clock[0].sleep_until(run.start + STEP)  # plans start from this run's first SOC reading
    assert run.settings.mqtt_url and run.settings.db_url
    for segment in (0, 1):
        stop = asyncio.Event()
        async with (
            SchedulerLock(run.settings.db_url, 10) as lock,
            SetpointPublisher(run.settings.mqtt_url, f"sched-{segment}", 10) as pub,
        ):
            scheduler = Scheduler(run.site, run.settings, clock[0], Backend.POSTGRES, pub)
            task = asyncio.create_task(scheduler.run(stop, lock))
            if segment == 0 and restart_at is not None:
                until = run.start + restart_at * STEP + STEP / 2
                await clock[0].sleep_until(until)
            else:
                await simulation
            stop.set()
            await task
        if simulation.done():
            break


@pytest.mark.parametrize(
    ("history_days", "start_h", "steps", "restart_at"),
    [
        pytest.param(3, 6, 24, 10, id="6h"),
        pytest.param(7, 0, 96, 40, id="day", marks=pytest.mark.slow),
    ],
)
async def test_simulated_batteries_follow_the_plans(
    tmp_path: Path,
    pg_url: str,
    prefix: str,
    history_days: int,
    start_h: int,
    steps: int,
    restart_at: int,
) -> None:
    broker = Broker(tmp_path / "mosquitto")
    broker.start()
    try:
        site = make_site()
        await prepare_db(pg_url, site)
        # the plans alone: the peak guard's overrides (tests/scheduler/test_guard.py) would part
        # the SOC from the plan's by design
        settings = scheduler_settings(
            pg_url, broker.url, prefix, scheduler_horizon_h=24, scheduler_peak_guard=False
        )
        start = day_start(2, site.tz) + timedelta(hours=start_h)
        run = Run(site, settings, start, steps)
        async with ingesting(settings):
            history = _options(run, start - timedelta(days=history_days), history_days * 96, None)
            await simulate(history)
            await wait_for_readings(pg_url, history_days * 96 * READINGS_PER_STEP)
            async with collect_setpoints(broker.url, prefix) as received:
                await live_day(run, restart_at)
            await wait_for_readings(pg_url, (history_days * 96 + steps) * READINGS_PER_STEP)
        async with connect(pg_url) as conn:
            await refresh_rollups(conn, Backend.POSTGRES)
        await check_run(pg_url, run, received)
    finally:
        broker.stop()


async def check_run(url: str, run: Run, received: list[Received]) -> None:
    steps = [pd.Timestamp(m.body["ts"]) for m in received]
    assert len(steps) == len(set(steps)), "a step was sent twice"
    assert len(steps) >= run.steps - 2
    async with connect(url) as conn:
        cur = await conn.execute("SELECT DISTINCT plan_id FROM setpoints ORDER BY 1")
        plans = [int(r[0]) for r in await cur.fetchall()]
        comparisons = [
            await plan_vs_actual(conn, Backend.POSTGRES, p, site=run.site) for p in plans
        ]
        window = (run.start, run.start + run.steps * STEP)
        days = await savings_by_day(conn, Backend.POSTGRES, "office", window, site=run.site)
        raw = await raw_readings(conn, run.start)
    soc_errors = [
        abs(s.planned_kwh - s.actual_kwh)
        for c in comparisons
        for step in c.step_details
        if step.controlled
        for s in step.soc
        if s.planned_kwh is not None and s.actual_kwh is not None
    ]
    assert len(soc_errors) >= run.steps - 4
    assert max(soc_errors) < SOC_TOLERANCE_KWH
    assert sum(c.steps for c in comparisons) == len(steps)
    controlled = sorted(
        pd.Timestamp(step.ts) for c in comparisons for step in c.step_details if step.controlled
    )
    expected = by_hand(raw, controlled)
    assert sum(c.actual.energy_cny for c in comparisons) == pytest.approx(expected["actual_cny"])
    assert sum(c.baseline.energy_cny for c in comparisons) == pytest.approx(
        expected["baseline_cny"]
    )
    assert sum(c.actual.co2_kg for c in comparisons) == pytest.approx(expected["actual_co2_kg"])
    assert sum(d.actual.energy_cny for d in days) == pytest.approx(expected["actual_cny"])
    assert sum(d.steps for d in days) == len(controlled)


async def raw_readings(conn: AsyncConnection, since: datetime) -> pd.DataFrame:
    """The raw readings of the building's main and battery power meters, one column each."""
    cur = await conn.execute(
        "SELECT r.ts, m.name, r.value FROM readings r JOIN meters m ON m.id = r.meter_id "
        "WHERE m.name IN ('main', 'bess-p') AND r.ts >= %s",
        (since,),
    )
    long = pd.DataFrame(await cur.fetchall(), columns=["ts", "name", "value"])
    long["ts"] = pd.to_datetime(long["ts"], utc=True)
    return long.pivot(index="ts", columns="name", values="value")


def shanghai_price(ts: pd.Timestamp) -> float:
    """DESIGN §6's Shanghai two-part TOU, written out again by hand (default prices)."""
    local = ts.tz_convert("Asia/Shanghai")
    hour, month = local.hour, local.month
    peak_hours = set(range(8, 15) if month in (7, 8, 9) else range(8, 11)) | set(range(18, 21))
    critical = (month in (7, 8) and hour in (12, 13)) or (month in (1, 12) and hour in (19, 20))
    if critical:
        return 1.375
    if hour in peak_hours:
        return 1.10
    if 6 <= hour < 22:
        return 0.65
    return 0.30


def by_hand(raw: pd.DataFrame, steps: list[pd.Timestamp]) -> dict[str, float]:
    """Cost and CO₂ from raw readings: one reading per meter and 15-min step, import ≥ 0."""
    rows = raw.loc[steps]
    price = pd.Series([shanghai_price(t) for t in rows.index], index=rows.index)
    actual = rows["main"].clip(lower=0)
    baseline = (rows["main"] - rows["bess-p"]).clip(lower=0)
    return {
        "actual_cny": float((actual * price * 0.25).sum()),
        "baseline_cny": float((baseline * price * 0.25).sum()),
        "actual_co2_kg": float((actual * 0.5306 * 0.25).sum()),
    }
