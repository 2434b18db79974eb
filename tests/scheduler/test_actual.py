"""Plan vs actual against readings written by hand, checked against a calculation by hand."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta

import pandas as pd
import pytest

from energyhub.clock import ManualClock
from energyhub.plans import store
from energyhub.plans.actual import plan_vs_actual
from energyhub.plans.days import savings_by_day
from energyhub.sites import SiteFile
from energyhub.store.db import Backend, connect

from .conftest import (
    BATTERY_KWH,
    SHARED_BROKER,
    HistorySpec,
    make_site,
    prepare_db,
    scheduler_for,
    scheduler_settings,
    write_history,
    write_readings,
)

START = datetime.fromisoformat("2025-07-08T00:00:00+08:00")  # valley: 0.30 CNY/kWh until 06:00
STEP = timedelta(minutes=15)
VALLEY_CNY_PER_KWH = 0.30
GRID_KG_PER_KWH = 0.5306
MAIN_KW = [700.0, 720.0, 690.0, 710.0]
SOC_PCT = [55.0, 60.0, 62.0, 62.0]
"""What the meters say for the first four steps; the SOC starts the day at 50 % (history)."""


def steps(n: int) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(START).tz_convert("UTC"), periods=n, freq=STEP)


async def run_steps(
    url: str,
    approval: str,
    n: int,
    *,
    site: SiteFile | None = None,
    main_kw: list[float] = MAIN_KW,
    **building: object,
) -> int:
    """History, then `n` scheduler ticks a step apart; the actual readings of the first four
    steps (`main_kw` the main meter's)."""
    site = site or make_site(approval, **building)
    await prepare_db(url, site)
    await write_history(url, HistorySpec(START - timedelta(days=7), START))
    settings = scheduler_settings(url, SHARED_BROKER, f"t{uuid.uuid4().hex[:10]}")
    clock = ManualClock(START)
    async with scheduler_for(settings, site, clock) as scheduler, connect(url) as conn:
        await scheduler.resume(conn)
        plan_id = (await scheduler.tick(conn)).replanned[0].id
        for _ in range(n - 1):
            await clock.advance(STEP)
            await scheduler.tick(conn)
    index = steps(len(MAIN_KW))
    await write_readings(
        url,
        {
            "main": pd.Series(main_kw, index),
            "pv": pd.Series(0.0, index),
            "bess-p": pd.Series([475.0, 400.0, 160.0, 0.0], index),
            "bess-soc": pd.Series(SOC_PCT, index),
            "outdoor": pd.Series(27.0, index),
        },
    )
    return plan_id


async def test_controlled_steps_against_the_meters(pg_url: str) -> None:
    plan_id = await run_steps(pg_url, "auto", 3)
    site = make_site()
    async with connect(pg_url) as conn:
        result = await plan_vs_actual(conn, Backend.POSTGRES, plan_id, site=site)
        schedule = await store.plan_steps(conn, plan_id)
        days = await savings_by_day(
            conn, Backend.POSTGRES, "office", (START, START + timedelta(days=1)), site=site
        )
    assert (result.basis, result.steps) == ("controlled", 3)
    assert [s.controlled for s in result.step_details[:5]] == [True, True, True, False, False]
    actual_kwh = sum(MAIN_KW[:3]) * 0.25
    assert result.actual.import_kwh == pytest.approx(actual_kwh)
    assert result.actual.energy_cny == pytest.approx(actual_kwh * VALLEY_CNY_PER_KWH)
    assert result.actual.co2_kg == pytest.approx(actual_kwh * GRID_KG_PER_KWH)
    baseline_kwh = (700 - 475 + 720 - 400 + 690 - 160) * 0.25  # the battery power meter
    assert result.baseline.energy_cny == pytest.approx(baseline_kwh * VALLEY_CNY_PER_KWH)
    assert result.savings_cny == pytest.approx((baseline_kwh - actual_kwh) * VALLEY_CNY_PER_KWH)
    planned_kwh = schedule["office:import_kw"].iloc[:3].sum() * 0.25
    assert result.planned.import_kwh == pytest.approx(planned_kwh)
    assert result.stored_change_kwh == pytest.approx((62 - 55) / 100 * BATTERY_KWH)
    soc = result.step_details[1].soc[0]
    assert soc.asset_id == "office-bess"
    assert soc.actual_kwh == pytest.approx(0.60 * BATTERY_KWH)
    assert soc.planned_kwh == pytest.approx(schedule["office-bess:soc_kwh"].iloc[1])
    assert [d.day.isoformat() for d in days] == ["2025-07-08"]
    assert days[0].savings_cny == pytest.approx(result.savings_cny)


async def test_a_battery_without_a_power_meter_is_read_from_its_soc(pg_url: str) -> None:
    meters = [
        {"id": "main", "carrier": "electricity", "quantity": "power_kw"},
        {"id": "pv", "carrier": "pv", "quantity": "power_kw", "asset": "office-pv"},
        {"id": "bess-soc", "carrier": "none", "quantity": "soc_pct", "asset": "office-bess"},
    ]
    plan_id = await run_steps(pg_url, "auto", 4, meters=meters)
    async with connect(pg_url) as conn:
        result = await plan_vs_actual(conn, Backend.POSTGRES, plan_id, site=make_site())
    soc_kwh = [50.0 / 100 * BATTERY_KWH] + [p / 100 * BATTERY_KWH for p in SOC_PCT]
    charge_kw = [(b - a) / 0.25 / 0.95 for a, b in itertools.pairwise(soc_kwh)]
    baseline_kwh = sum(m - c for m, c in zip(MAIN_KW, charge_kw, strict=True)) * 0.25
    assert result.steps == 4
    assert result.baseline.import_kwh == pytest.approx(baseline_kwh)
    assert result.step_details[0].baseline_import_kw == pytest.approx(700 - 100 / 0.25 / 0.95)


async def test_a_draft_is_compared_over_the_metered_steps(pg_url: str) -> None:
    plan_id = await run_steps(pg_url, "operator", 1)
    async with connect(pg_url) as conn:
        result = await plan_vs_actual(conn, Backend.POSTGRES, plan_id, site=make_site())
    assert (result.status, result.basis, result.steps) == ("draft", "metered", 4)
    assert len(result.step_details) == 48  # every step of the plan; actual None ahead
    assert result.step_details[4].actual_import_kw is None
    assert not any(s.controlled for s in result.step_details)
    assert result.actual.import_kwh == pytest.approx(sum(MAIN_KW) * 0.25)
    assert result.planned_savings_cny is not None
