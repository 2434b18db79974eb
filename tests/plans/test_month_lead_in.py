"""A day's realized savings do not hang on the query's window: each side starts the day from its
own month-to-date peak, read from the local month's start, so a day queried alone reads what it
reads inside a longer window of its month; a new month's bill starts from nothing."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from energyhub.clock import ManualClock
from energyhub.plans import counterfactual
from energyhub.plans.actual import plan_vs_actual
from energyhub.plans.comparison import DaySavings
from energyhub.plans.days import savings_by_day
from energyhub.sites import SiteFile, parse_site
from energyhub.store.db import Backend, connect
from tests.scheduler.conftest import (
    SHARED_BROKER,
    HistorySpec,
    prepare_db,
    scheduler_for,
    scheduler_settings,
    site_doc,
    write_history,
    write_readings,
)

DEMAND_CNY_PER_KW = 40.0
FIRST = datetime.fromisoformat("2025-07-30T00:00:00+08:00")  # valley until 06:00
DAYS = 3  # 07-30, 07-31 and 08-01
HOUR = 4
"""The scheduler steers the first hour of each day; the meters run the rest uncontrolled
(the office's 300–900 kW)."""
CONTROLLED: dict[int, tuple[float, float, list[float]]] = {
    # day: (main kW, battery kW: < 0 discharging, SOC % at the end of each step)
    0: (1500.0, -400.0, [49.0, 48.0, 47.0, 46.0]),
    1: (1600.0, 0.0, [46.0, 46.0, 46.0, 46.0]),
    2: (1200.0, -200.0, [45.5, 45.0, 44.5, 44.0]),
}
"""The rules serve the valley's demand (main − battery) from the grid: 1,900 kW on the first
day, above anything the meters saw; on the second day the meters' 1,600 kW rise above their
1,500 kW, the counterfactual's stays under its 1,900 kW."""


def demand_site() -> SiteFile:
    doc = site_doc()
    doc["city"]["parks"][0]["grid"]["demand_charge_cny_per_kw"] = DEMAND_CNY_PER_KW
    return parse_site(doc, "test-site")


def day_start(i: int) -> datetime:
    return FIRST + timedelta(days=i)


Steered = dict[int, tuple[float, float, list[float]]]


async def steered_days(
    url: str, site: SiteFile, first: datetime = FIRST, controlled: Steered = CONTROLLED
) -> None:
    """History, then each day the scheduler's first hour (four ticks) under the `controlled`
    readings (by day from `first`); the rest of each day the office's history readings."""

    def day_start(i: int) -> datetime:
        return first + timedelta(days=i)

    await prepare_db(url, site)
    await write_history(url, HistorySpec(first - timedelta(days=7), first))
    settings = scheduler_settings(url, SHARED_BROKER, f"t{uuid.uuid4().hex[:10]}")
    clock = ManualClock(first)
    async with scheduler_for(settings, site, clock) as scheduler, connect(url) as conn:
        await scheduler.resume(conn)
        for i, (main_kw, battery_kw, soc_pct) in controlled.items():
            for tick in range(HOUR):
                await scheduler.tick(conn)
                if tick < HOUR - 1:
                    await clock.advance(timedelta(minutes=15))
            hour = pd.date_range(
                pd.Timestamp(day_start(i)).tz_convert("UTC"), periods=HOUR, freq="15min"
            )
            await write_readings(
                url,
                {
                    "main": pd.Series(main_kw, hour),
                    "pv": pd.Series(0.0, hour),
                    "bess-p": pd.Series(battery_kw, hour),
                    "bess-soc": pd.Series(soc_pct, hour),
                    "outdoor": pd.Series(27.0, hour),
                },
            )
            rest = day_start(i) + timedelta(hours=1)
            await write_history(url, HistorySpec(rest, day_start(i + 1), soc_pct=soc_pct[-1]))
            await clock.advance(day_start(i + 1) - clock.now())


def figures(day: DaySavings) -> dict[str, object]:
    """Everything a day says: its accounts and its realized figures."""
    return day.model_dump()


async def test_a_day_reads_the_same_alone_and_inside_its_months_window(pg_url: str) -> None:
    site = demand_site()
    await steered_days(pg_url, site)
    async with connect(pg_url) as conn:
        week = await savings_by_day(
            conn, Backend.POSTGRES, "office", (day_start(0), day_start(DAYS)), site=site
        )
        alone = [
            await savings_by_day(
                conn, Backend.POSTGRES, "office", (day_start(i), day_start(i + 1)), site=site
            )
            for i in range(DAYS)
        ]
        plans = await conn.execute("SELECT DISTINCT plan_id FROM setpoints ORDER BY 1")
        second = [int(r[0]) for r in await plans.fetchall()][1]
        second_plan = await plan_vs_actual(conn, Backend.POSTGRES, second, site=site)
    assert [d.day for d in week] == [date(2025, 7, 30), date(2025, 7, 31), date(2025, 8, 1)]
    for i, day in enumerate(week):
        assert [d.day for d in alone[i]] == [day.day]
        assert figures(alone[i][0]) == figures(day), day.day
    first, second_day, august = week
    for day in week:
        assert day.realized is not None and day.realized.steps == HOUR
    # 07-30: the rules' 1,900 kW is the month's peak on their bill; the meters' 1,500 kW on theirs
    sides = first.realized.breakdown if first.realized else {}
    assert sides["counterfactual"].demand_cny > sides["metered"].demand_cny > 0
    # 07-31 alone: the counterfactual starts from its own 1,900 kW (not the meters' 1,500 kW):
    # no rise, no charge; the meters rise 100 kW above their own month's peak
    alone_sides = alone[1][0].realized.breakdown if alone[1][0].realized else {}
    assert alone_sides["counterfactual"].demand_cny == 0.0
    assert alone_sides["metered"].demand_cny == pytest.approx(100.0 * DEMAND_CNY_PER_KW, rel=1e-6)
    assert second_day.actual.month_peak_kw == pytest.approx(1500.0)
    # 08-01: a new month's bill, every side from the day's uncontrolled office load (≤ 900 kW),
    # not July's 1,600 kW (the meters) or 1,900 kW (the rules)
    start_kw = august.actual.month_peak_kw
    assert 0 < start_kw <= 900.0
    aug_sides = august.realized.breakdown if august.realized else {}
    assert aug_sides["metered"].demand_cny == pytest.approx(
        (1200.0 - start_kw) * DEMAND_CNY_PER_KW, rel=1e-6
    )
    assert aug_sides["counterfactual"].demand_cny == pytest.approx(
        (1400.0 - start_kw) * DEMAND_CNY_PER_KW, rel=1e-6
    )
    # the plan that steered 07-31 compares its counterfactual from the same month so far
    assert second_plan.realized is not None
    plan_sides = second_plan.realized.breakdown
    assert plan_sides["counterfactual"].demand_cny == 0.0


async def test_a_long_lead_in_reads_the_meters_once_and_changes_no_figure(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """07-31 asked alone has three days of its month before it (07-28 to 07-30) as a lead-in.
    Its figures are those it has inside the whole window, where each of those days is computed
    as a day of the window (its meters read for it alone): batching the lead-in's reads changes
    nothing. The lead-in reads the connection's telemetry once, not once per day (a one-day query
    on the 28th of a month read it 27 times, ~0.7 s each)."""
    first = datetime.fromisoformat("2025-07-28T00:00:00+08:00")
    steered = {0: (1300.0, -100.0, [49.75, 49.5, 49.25, 49.0])} | {
        i + 1: day for i, day in CONTROLLED.items()
    }
    site = demand_site()
    await steered_days(pg_url, site, first, steered)
    last = (first + timedelta(days=3), first + timedelta(days=4))
    async with connect(pg_url) as conn:
        window = await savings_by_day(conn, Backend.POSTGRES, "office", (first, last[1]), site=site)
        reads = {"n": 0}
        counted = counterfactual.read_telemetry

        async def counting(*args: Any, **kwargs: Any) -> Any:
            reads["n"] += 1
            return await counted(*args, **kwargs)

        monkeypatch.setattr(counterfactual, "read_telemetry", counting)
        alone = await savings_by_day(conn, Backend.POSTGRES, "office", last, site=site)
        with_lead_in = reads["n"]
        reads["n"] = 0
        await savings_by_day(conn, Backend.POSTGRES, "office", last, site=site, lead_in=False)
        without = reads["n"]
    assert [d.day for d in window][-1] == date(2025, 7, 31) == alone[0].day
    assert len(window) == 4 and all(d.realized is not None for d in window)
    assert figures(alone[0]) == figures(window[-1])
    assert window[-1].realized is not None and window[-1].realized.steps == HOUR
    assert with_lead_in - without == 1  # the three lead-in days: one read
