"""The whole loop on simulated time: the simulator publishes, ingest stores, the scheduler
forecasts, plans and sends setpoints, the simulated battery follows them, its SOC comes back.

Days of history go through the real path at full speed first; then a simulated day runs in
lockstep with the scheduler (`energyhub.demo.live.simulated_world`): at each 15-min step the
simulator waits until the readings before it are stored and rolled up, the scheduler's tick has
run and its setpoint has reached the battery. Every step is steered from its start however busy
the machine is, so the battery's SOC follows the plans' within what the models differ by. Midway
the scheduler is stopped and a fresh one started, as after a deploy.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from psycopg import AsyncConnection
from rich.progress import Progress

from energyhub.demo.live import Timeline, simulated_world
from energyhub.demo.services import committed, ingesting, keeping_up
from energyhub.plans.actual import plan_vs_actual
from energyhub.plans.days import savings_by_day
from energyhub.sites import SiteFile
from energyhub.store.db import Backend, connect
from energyhub.store.maintenance import refresh_rollups
from simulators.simulate import SimulationSummary

from .conftest import (
    BATTERY_KWH,
    Broker,
    Received,
    collect_setpoints,
    make_site,
    prepare_db,
    scheduler_settings,
)

pytestmark = pytest.mark.timed  # a simulated day through the whole stack, off `make test`

STEP = timedelta(minutes=15)
PERIOD_STEPS = 4
"""scheduler_settings' re-plan period, 60 min, in steps."""
SOC_TOLERANCE_KWH = 0.001 * BATTERY_KWH
"""2 kWh. In lockstep the battery does each step what the plan said: SOC readings come at
0.01 % (0.2 kWh) and stayed within 0.18 kWh of the plans'; a setpoint one step late parts them
by up to 500 kW × 0.25 h × 0.95 = 119 kWh."""
READINGS_PER_STEP = 5
"""main, outdoor (frames); pv, bess-p, bess-soc (single readings)."""


def day_start(days_ago: int, tz: ZoneInfo) -> datetime:
    today = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


async def count(url: str, query: str, *params: object) -> int:
    async with connect(url) as conn:
        row = await (await conn.execute(query, params or None)).fetchone()
        return int(row[0]) if row else 0


async def wait_for_readings(url: str, expected: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while await count(url, "SELECT count(*) FROM readings") < expected:
        assert time.monotonic() < deadline, "the ingest did not store every reading in time"
        await asyncio.sleep(0.2)


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
        # the SOC from the plan's by design; the lockstep's rollup refresh is what re-plans see
        settings = scheduler_settings(
            pg_url, broker.url, prefix, scheduler_horizon_h=24, scheduler_peak_guard=False,
            rollup_refresh_s=3600,
        )  # fmt: skip
        start = day_start(2, site.tz) + timedelta(hours=start_h)
        timeline = Timeline(start, timedelta(days=history_days), steps * STEP, sim_step=STEP)
        restart = start + restart_at * STEP + STEP / 2  # mid-step, between two ticks
        async with ingesting(settings) as worker, collect_setpoints(broker.url, prefix) as received:

            async def history_stored() -> None:
                await wait_for_readings(pg_url, history_days * 96 * READINGS_PER_STEP)

            with Progress(disable=True) as progress:
                summary = await simulated_world(
                    settings, site, timeline, progress, history_stored, keeping_up(worker),
                    committed(worker), restart_at=restart,
                )  # fmt: skip
            await wait_for_readings(pg_url, (history_days * 96 + steps) * READINGS_PER_STEP)
        async with connect(pg_url) as conn:
            await refresh_rollups(conn, Backend.POSTGRES)
        await check_run(pg_url, site, (start, steps), received, summary)
    finally:
        broker.stop()


async def check_run(
    url: str,
    site: SiteFile,
    live: tuple[datetime, int],
    received: list[Received],
    summary: SimulationSummary,
) -> None:
    start, n_steps = live
    steps = [pd.Timestamp(m.body["ts"]) for m in received]
    assert len(steps) == len(set(steps)), "a step was sent twice"
    # in lockstep every step is steered from its start, across the restart too
    assert sorted(steps) == list(pd.date_range(start, periods=n_steps, freq=STEP))
    assert summary.setpoints_heard == n_steps  # every one reached the simulated battery
    async with connect(url) as conn:
        cur = await conn.execute("SELECT DISTINCT plan_id FROM setpoints ORDER BY 1")
        plans = [int(r[0]) for r in await cur.fetchall()]
        comparisons = [await plan_vs_actual(conn, Backend.POSTGRES, p, site=site) for p in plans]
        window = (start, start + n_steps * STEP)
        days = await savings_by_day(conn, Backend.POSTGRES, "office", window, site=site)
        raw = await raw_readings(conn, start)
    # the fresh scheduler re-plans on the period the stopped one kept, not again at its start
    assert len(plans) == math.ceil(n_steps / PERIOD_STEPS)
    soc_errors = [
        abs(s.planned_kwh - s.actual_kwh)
        for c in comparisons
        for step in c.step_details
        if step.controlled
        for s in step.soc
        if s.planned_kwh is not None and s.actual_kwh is not None
    ]
    assert len(soc_errors) == n_steps
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
