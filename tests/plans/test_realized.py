"""Realized value against the meters: the counterfactual (rules on metered demand), realized
savings, perfect foresight and the capture ratio, checked against calculations by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest

from energyhub.optimize.scope import resolve_scope
from energyhub.plans.actual import plan_vs_actual, savings_by_day
from energyhub.plans.metered import storages
from energyhub.plans.realized import setpoint_changes
from energyhub.store.db import Backend, connect
from tests.scheduler.conftest import BATTERY_KWH, make_site
from tests.scheduler.test_actual import (
    GRID_KG_PER_KWH,
    MAIN_KW,
    START,
    STEP,
    VALLEY_CNY_PER_KWH,
    run_steps,
    steps,
)

BATTERY_KW = [475.0, 400.0, 160.0]
"""The battery power meter's first three steps (charging), as tests/scheduler/test_actual writes."""


async def test_the_counterfactual_is_the_rules_on_metered_demand(pg_url: str) -> None:
    """Three controlled valley steps: the building's demand is main − battery (PV 0), the rules
    serve it from the grid; the meters show main. Every step is valley (0.30): nothing to gain
    with perfect foresight, so no capture ratio."""
    plan_id = await run_steps(pg_url, "auto", 3)
    site = make_site()
    async with connect(pg_url) as conn:
        result = await plan_vs_actual(conn, Backend.POSTGRES, plan_id, site=site)
        days = await savings_by_day(
            conn, Backend.POSTGRES, "office", (START, START + timedelta(days=1)), site=site
        )
    realized = result.realized
    assert realized is not None and realized.steps == 3, result
    demand_kwh = sum(m - b for m, b in zip(MAIN_KW[:3], BATTERY_KW, strict=True)) * 0.25
    metered_kwh = sum(MAIN_KW[:3]) * 0.25
    assert realized.counterfactual_cny == pytest.approx(demand_kwh * VALLEY_CNY_PER_KWH)
    assert realized.counterfactual_co2_kg == pytest.approx(demand_kwh * GRID_KG_PER_KWH)
    assert realized.metered_cny == pytest.approx(metered_kwh * VALLEY_CNY_PER_KWH)
    # the meters left 12 % of the battery (240 kWh) in it, the counterfactual none: credited at
    # η_discharge × the window's mean import price (and grid factor), on both sides that did
    left_kwh = 0.12 * BATTERY_KWH
    credit_cny = left_kwh * 0.95 * VALLEY_CNY_PER_KWH
    assert realized.stored_value_cny == pytest.approx(credit_cny)
    assert realized.breakdown["metered"].stored_kwh == pytest.approx(left_kwh)
    assert realized.savings_cny == pytest.approx(
        (demand_kwh - metered_kwh) * VALLEY_CNY_PER_KWH + credit_cny
    )
    assert realized.savings_co2_kg == pytest.approx(
        (demand_kwh - metered_kwh + left_kwh * 0.95) * GRID_KG_PER_KWH
    )
    # perfect foresight goes from the metered SOC before (50 %) to the metered SOC after (62 %):
    # at one price its best is to charge those 240 kWh through η 0.95 on top of the demand
    charge_cny = left_kwh / 0.95 * VALLEY_CNY_PER_KWH
    assert realized.perfect_foresight_cny == pytest.approx(
        realized.counterfactual_cny + charge_cny, abs=1e-3
    )
    assert realized.breakdown["perfect_foresight"].stored_kwh == pytest.approx(left_kwh, abs=1e-3)
    # what is left is worth less than it cost by the round trip: still nothing to gain
    assert realized.perfect_savings_cny == pytest.approx(credit_cny - charge_cny, abs=1e-3)
    assert realized.savings_cny <= realized.perfect_savings_cny  # the meters charged more
    assert realized.capture_ratio is None  # nothing to capture: foresight saves nothing
    assert days[0].realized is not None
    assert days[0].realized.savings_cny == pytest.approx(realized.savings_cny)


async def test_a_store_without_soc_readings_is_valued_from_its_setpoints(pg_url: str) -> None:
    """What the setpoints asked of the battery over the three controlled steps: charge × η 0.95,
    discharge ÷ η 0.95, a quarter hour each (the device follows them within its limits)."""
    await run_steps(pg_url, "auto", 3)
    battery = next(a for a in storages(resolve_scope(make_site(), "building", "office")))
    first = steps(3)[0]
    span = (first, first + 3 * STEP)
    async with connect(pg_url) as conn:
        found = await setpoint_changes(conn, [battery], span, STEP)
        cur = await conn.execute(
            "SELECT p_kw FROM setpoints WHERE asset_id = %s AND ts >= %s AND ts < %s",
            (battery.id, *(t.to_pydatetime() for t in span)),
        )
        sent = [float(row[0]) for row in await cur.fetchall()]
    assert len(sent) == 3
    expected = sum(p * 0.95 if p > 0 else p / 0.95 for p in sent) * 0.25
    assert found == {battery.id: pytest.approx(expected)}
