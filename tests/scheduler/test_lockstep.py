"""The closed loop in lockstep (bench/closed_loop.py's way): the simulator waits at each plan
step for the scheduler's tick, so every step of the live part is steered, from its first minute,
however long the machine takes to plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from rich.progress import Progress

from energyhub.demo.live import Timeline, simulated_world
from energyhub.demo.services import committed, ingesting, keeping_up, settled
from energyhub.localdays import step_floor
from energyhub.plans.actual import plan_vs_actual
from energyhub.store.db import Backend, connect
from energyhub.store.maintenance import refresh_rollups

from .conftest import BATTERY_KWH, SHARED_BROKER, make_site, prepare_db, scheduler_settings

STEP = timedelta(minutes=15)
LIVE_STEPS = 32
"""8 h: re-plans more than 6 h (a meter's silence limit) after the history's last rollup."""


async def test_in_lockstep_every_step_is_steered_from_its_start(pg_url: str, prefix: str) -> None:
    site = make_site()
    await prepare_db(pg_url, site)
    # the ingest's own rollup refresh never comes: the lockstep's refresh is what re-plans see
    settings = scheduler_settings(pg_url, SHARED_BROKER, prefix, rollup_refresh_s=3600)
    live_start = step_floor(datetime.now(UTC) - LIVE_STEPS * STEP, STEP, site.tz)
    await _setpoints_of_an_earlier_run(pg_url, live_start - timedelta(days=30))
    timeline = Timeline(live_start, timedelta(days=3), LIVE_STEPS * STEP)
    async with ingesting(settings) as worker:

        async def between() -> None:
            await settled(worker)
            async with connect(pg_url) as conn:
                await refresh_rollups(conn, Backend.POSTGRES)

        with Progress(disable=True) as progress:
            summary = await simulated_world(
                settings, site, timeline, progress, between, keeping_up(worker), committed(worker)
            )  # fmt: skip
        await settled(worker)
    async with connect(pg_url) as conn:
        await refresh_rollups(conn, Backend.POSTGRES)
        cur = await conn.execute(
            "SELECT ts, plan_id, status FROM setpoints WHERE asset_id = 'office-bess' ORDER BY ts"
        )
        sent = await cur.fetchall()
        cur = await conn.execute("SELECT status, count(*) FROM plans GROUP BY status")
        plans = dict(await cur.fetchall())
        comparisons = [
            await plan_vs_actual(conn, Backend.POSTGRES, p, site=site)
            for p in sorted({int(row[1]) for row in sent})
        ]
    steps = pd.date_range(live_start, periods=LIVE_STEPS, freq=STEP)
    assert [pd.Timestamp(row[0]) for row in sent] == list(steps)  # one setpoint a step, each step
    assert {row[2] for row in sent} == {"acked"}
    assert "failed" not in plans  # each re-plan saw the readings up to its step, rolled up
    assert summary.setpoints_heard == LIVE_STEPS  # every one reached the simulated battery
    controlled = [s for c in comparisons for s in c.step_details if s.controlled]
    assert len(controlled) == LIVE_STEPS
    soc_errors = [
        abs(s.planned_kwh - s.actual_kwh)
        for step in controlled
        for s in step.soc
        if s.planned_kwh is not None and s.actual_kwh is not None
    ]
    assert len(soc_errors) == LIVE_STEPS
    assert max(soc_errors) < 0.02 * BATTERY_KWH  # the battery did what each step's plan said


async def _setpoints_of_an_earlier_run(url: str, at: datetime) -> None:
    """A database a scheduler ran on before: its acknowledged setpoints are not this run's."""
    async with connect(url) as conn:
        cur = await conn.execute(
            "INSERT INTO plans (level, site_id, status, horizon_start, horizon_end, step_s) "
            "VALUES ('building', 'office', 'superseded', %s, %s, 900) RETURNING id",
            (at, at + STEP),
        )
        row = await cur.fetchone()
        assert row is not None
        await conn.execute(
            "INSERT INTO setpoints (plan_id, site_id, asset_id, ts, p_kw, topic, status) "
            "VALUES (%s, 'office', 'office-pv', %s, 0, 'old/topic', 'acked')",
            (row[0], at),
        )
