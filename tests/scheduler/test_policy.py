"""carbon.plan_policy: the scheduler solves the cost–CO₂ frontier and plans the point the policy
picks (abate while a tonne costs at most max_abatement_cost_cny_per_t)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pandas as pd
import pytest

from energyhub.clock import ManualClock
from energyhub.optimize.frontier import FrontierPoint, pick
from energyhub.plans.days import savings_by_day
from energyhub.plans.policy import Co2Limit, policy_point
from energyhub.sites import PlanPolicy, SiteFile, parse_site
from energyhub.store.db import Backend, connect

from .conftest import (
    SHARED_BROKER,
    HistorySpec,
    prepare_db,
    scheduler_for,
    scheduler_settings,
    site_doc,
    write_history,
    write_readings,
)

START = datetime.fromisoformat("2025-07-08T00:00:00+08:00")  # valley, then the day's peaks


NO_CEILING = {"max_cost_to_meet_co2_limit_cny_per_t": 1e7}


def site_with(policy: dict[str, float]) -> SiteFile:
    doc = site_doc("auto")
    doc["city"]["carbon"] = {"price_cny_per_t": 60, "plan_policy": policy}
    return parse_site(doc, "policy-site")


@pytest.mark.parametrize("limit", [0.0, 1e7])
async def test_the_scheduler_plans_the_point_its_policy_picks(pg_url: str, limit: float) -> None:
    site = site_with({"max_abatement_cost_cny_per_t": limit, "frontier_points": 3, **NO_CEILING})
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START))
    settings = scheduler_settings(
        pg_url, SHARED_BROKER, f"t{uuid.uuid4().hex[:10]}", scheduler_horizon_h=12
    )
    async with scheduler_for(settings, site, ManualClock(START)) as scheduler, connect(pg_url) as c:
        await scheduler.resume(c)
        record = (await scheduler.tick(c)).replanned[0]
    points = [FrontierPoint(**p) for p in record.solver["frontier"]]
    assert len(points) == 3
    assert points[0].co2_kg > points[-1].co2_kg  # the battery's cycling costs CO₂ (its losses)
    policy = PlanPolicy(max_abatement_cost_cny_per_t=limit, **NO_CEILING)
    assert pick(points, policy) == (0 if limit == 0 else 2)
    baseline_co2_kg = float(record.baseline["co2_kg"])
    chosen, within = policy_point(points, Co2Limit(baseline_co2_kg, 0.0, 0.0, 0.0), policy)
    assert within
    assert record.solver["frontier_point"] == chosen
    assert record.co2_kg == pytest.approx(points[chosen].co2_kg, rel=1e-6)
    assert record.co2_kg <= baseline_co2_kg * (1 + 1e-6)  # never above its baseline


def _point(index: int, co2_kg: float, cost_cny: float, mac: float | None) -> FrontierPoint:
    return FrontierPoint(index, None, co2_kg, cost_cny, cost_cny, mac)


POINTS = [_point(0, 1000.0, 500.0, None), _point(1, 950.0, 510.0, 200.0),
          _point(2, 900.0, 530.0, 400.0), _point(3, 880.0, 600.0, 3500.0)]  # fmt: skip


@pytest.mark.parametrize(
    ("baseline_kg", "limit", "ceiling", "expected"),
    [
        (1200.0, 0.0, 1000.0, (0, True)),  # the cost-optimal point is below its baseline: kept
        (960.0, 0.0, 1000.0, (1, True)),  # above: the cheapest point at or below the baseline
        (960.0, 300.0, 1000.0, (1, True)),  # the policy's own pick is already below
        (920.0, 300.0, 1000.0, (2, True)),  # the policy stops at 1 (950 > 920): on to 2
        (920.0, 0.0, 300.0, (1, False)),  # on to 2 costs 400 CNY/t, above the ceiling: stop
        (800.0, 0.0, 1000.0, (2, False)),  # none is below; 3 costs 3,500 CNY/t: stop at 2
        (800.0, 0.0, 1e4, (3, False)),  # none is below: the CO₂-optimal one, not met
    ],
)
def test_a_policy_never_picks_a_plan_above_its_baseline_within_its_ceiling(
    baseline_kg: float, limit: float, ceiling: float, expected: tuple[int, bool]
) -> None:
    policy = PlanPolicy(
        max_abatement_cost_cny_per_t=limit, max_cost_to_meet_co2_limit_cny_per_t=ceiling
    )
    assert policy_point(POINTS, Co2Limit(baseline_kg, 0.0, 0.0, 0.0), policy) == expected


async def test_the_scheduler_plans_within_a_co2_limit_without_a_frontier(pg_url: str) -> None:
    """max_co2_vs_baseline_pct: 0 alone: the re-plan is the cheapest plan emitting no more than
    its baseline (the battery's cycling would emit more), stored with what the policy did."""
    site = site_with({"max_co2_vs_baseline_pct": 0, **NO_CEILING})
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START))
    settings = scheduler_settings(
        pg_url, SHARED_BROKER, f"t{uuid.uuid4().hex[:10]}", scheduler_horizon_h=12
    )
    async with scheduler_for(settings, site, ManualClock(START)) as scheduler, connect(pg_url) as c:
        await scheduler.resume(c)
        record = (await scheduler.tick(c)).replanned[0]
    outcome = record.solver["carbon_policy"]
    assert "frontier" not in record.solver
    assert outcome["met"] is True
    assert outcome["cost_optimal_co2_kg"] > float(record.baseline["co2_kg"])  # it had to act
    assert record.co2_kg <= outcome["limit_co2_kg"] * (1 + 1e-6)
    assert outcome["limit_co2_kg"] == pytest.approx(
        float(record.baseline["co2_kg"]) + outcome["stored_co2_kg"]
    )
    assert "capped at the limit" in outcome["note"]


@pytest.mark.parametrize("carry", [True, False])
async def test_a_replan_carries_what_the_day_so_far_emitted_above_its_counterfactual(
    pg_url: str, carry: bool
) -> None:
    """The battery charged 475 kW for an hour while its SOC rose 6 points: the meters emitted
    more than the rules would have on that demand, storage credited. The next re-plan's limit is
    its baseline's less that deficit (all 48 of its steps are left today), as savings_by_day
    counts it; with carry_day_co2_deficit false it is not tightened."""
    site = site_with({"max_co2_vs_baseline_pct": 0, "carry_day_co2_deficit": carry, **NO_CEILING})
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START))
    settings = scheduler_settings(pg_url, SHARED_BROKER, f"t{uuid.uuid4().hex[:10]}")
    clock = ManualClock(START)
    hour = pd.date_range(pd.Timestamp(START).tz_convert("UTC"), periods=4, freq="15min")
    async with scheduler_for(settings, site, clock) as scheduler, connect(pg_url) as conn:
        await scheduler.resume(conn)
        await scheduler.tick(conn)
        for _ in range(3):
            await clock.advance(timedelta(minutes=15))
            await scheduler.tick(conn)
        await write_readings(
            pg_url,
            {
                "main": pd.Series([900.0, 920.0, 890.0, 910.0], hour),
                "pv": pd.Series(0.0, hour),
                "bess-p": pd.Series(475.0, hour),
                "bess-soc": pd.Series([53.0, 55.0, 57.0, 59.0], hour),
                "outdoor": pd.Series(27.0, hour),
            },
        )
        days = await savings_by_day(
            conn, Backend.POSTGRES, "office", (START, START + timedelta(hours=1)), site=site,
            foresight=False,
        )  # fmt: skip
        await clock.advance(timedelta(minutes=15))
        record = (await scheduler.tick(conn)).replanned[0]
    realized = days[0].realized
    assert realized is not None and realized.steps == 4
    deficit_kg = -realized.savings_co2_kg
    assert deficit_kg > 50  # the meters' losses, beyond the storage credit
    outcome = record.solver["carbon_policy"]
    expected = deficit_kg if carry else 0.0
    assert outcome["carried_co2_kg"] == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert outcome["limit_co2_kg"] == pytest.approx(
        float(record.baseline["co2_kg"]) + outcome["stored_co2_kg"] - expected
    )
    carried = [w for w in record.warnings if "carried into this plan's CO₂ limit" in w]
    assert len(carried) == (1 if carry else 0)
    if carry:
        assert "carried from the day so far" in outcome["note"]
        assert outcome["met"] is (record.co2_kg <= outcome["limit_co2_kg"] * (1 + 1e-6))


def test_a_carried_deficit_tightens_the_limit() -> None:
    limit = Co2Limit(1000.0, -1.0, 50.0, 20.0, carried_kg=100.0)
    assert limit.limit_kg == pytest.approx(1000.0 * 0.99 + 20.0 - 100.0)
    assert limit.holds(910.0) and not limit.holds(911.0)
