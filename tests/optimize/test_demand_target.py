"""The month's demand target: a plan (and its baseline) pays the demand charge only above
max(month-to-date peak, target); the month peak it reports stays the metered one."""

from __future__ import annotations

import pytest

from energyhub.errors import EnergyhubError
from energyhub.optimize import plan
from tests.optimize.cases import building_site, city_site, day_inputs, inputs, small_park
from tests.optimize.test_billing import BATTERY, LOAD_KW, PRICE, RATE


@pytest.mark.parametrize(
    ("month_peak_kw", "target_kw", "demand_cny"),
    [(0.0, 450.0, RATE * 50), (460.0, 450.0, RATE * 40), (0.0, 600.0, 0.0), (0.0, 0.0, RATE * 500)],
)
def test_the_rise_above_the_higher_of_month_peak_and_target_is_billed(
    month_peak_kw: float, target_kw: float, demand_cny: float
) -> None:
    """No assets: the plan is the load, peak 500 kW; billed 500 − max(month peak, target); the
    free level is the target only up to the rules' own peak (500)."""
    site = building_site([], grid={"demand_charge_cny_per_kw": RATE})
    frame = inputs(3, b1__electricity_kw=LOAD_KW, b1__demand_target_kw=target_kw)
    result = plan(site, frame, level="building", site_id="b1", month_peak_kw=month_peak_kw)
    assert result.cost_cny["demand"] == pytest.approx(demand_cny, abs=1e-6)
    assert result.baseline.cost_cny["demand"] == pytest.approx(demand_cny, abs=1e-9)
    assert result.month_peak_kw == {"b1": month_peak_kw}  # the metered one, as plan vs actual
    free = max(month_peak_kw, min(target_kw, 500.0))
    assert result.schedule["b1:free_peak_kw"].to_numpy() == pytest.approx([free] * 3)


def test_a_battery_does_not_shave_below_the_target() -> None:
    """Month peak 0, target 450: as with a month peak of 450 (test_billing), the battery shaves
    step 2 to 450 and no further; energy 0.5·(1200 + 50/0.9025 − 50)."""
    site = building_site([BATTERY], grid={"demand_charge_cny_per_kw": RATE})
    frame = inputs(3, b1__electricity_kw=LOAD_KW, b1__demand_target_kw=450.0)
    result = plan(site, frame, level="building", site_id="b1", month_peak_kw=0.0)
    assert result.cost_cny["demand"] == pytest.approx(0.0, abs=1e-6)
    assert result.scalars["b1:peak_import_kw"] == pytest.approx(450.0, abs=1e-6)
    assert result.objective_cny == pytest.approx(
        PRICE * (sum(LOAD_KW) + 50 / 0.9025 - 50), abs=1e-6
    )
    without = plan(site, inputs(3, b1__electricity_kw=LOAD_KW), level="building", site_id="b1")
    assert without.scalars["b1:peak_import_kw"] < 450.0 - 1.0  # it would shave deeper


def test_a_target_above_the_rules_peak_is_no_licence_to_import_above_it() -> None:
    """Load 450, 500, 400; import at 0.1 CNY/kWh in step 1, 1.0 after: charging 100 kW in step 1
    (import 550) would pay if import up to the target of 600 were free. It is free only up to the
    rules' own peak, 500: the 50 kW above it would cost 40 × 50 = 2,000 CNY, more than the
    arbitrage, so the plan's import stays within 500 and no demand charge is billed."""
    site = building_site([BATTERY], grid={"demand_charge_cny_per_kw": RATE})
    frame = inputs(
        3,
        b1__electricity_kw=[450.0, 500.0, 400.0],
        b1__demand_target_kw=600.0,
        import_price_cny_per_kwh=[0.1, 1.0, 1.0],
    )
    result = plan(site, frame, level="building", site_id="b1")
    assert result.schedule["b1:import_kw"].max() <= 500.0 + 1e-6
    assert result.cost_cny["demand"] == pytest.approx(0.0, abs=1e-6)
    assert result.schedule["b1:free_peak_kw"].to_numpy() == pytest.approx([500.0] * 3)


def test_daily_billing_ignores_the_target() -> None:
    grid = {"demand_charge_cny_per_kw": RATE, "demand_billing": "daily"}
    site = building_site([], grid=grid)
    frame = inputs(3, b1__electricity_kw=LOAD_KW, b1__demand_target_kw=450.0)
    result = plan(site, frame, level="building", site_id="b1")
    assert result.cost_cny["demand"] == pytest.approx(RATE * 500, abs=1e-6)
    assert result.baseline.cost_cny["demand"] == pytest.approx(RATE * 500)
    assert "b1:free_peak_kw" not in result.schedule.columns


@pytest.mark.parametrize("target_kw", [-5.0, 1e9])
def test_a_target_out_of_range_is_named(target_kw: float) -> None:
    site = building_site([], grid={"demand_charge_cny_per_kw": RATE})
    frame = inputs(3, b1__electricity_kw=LOAD_KW, b1__demand_target_kw=target_kw)
    with pytest.raises(EnergyhubError, match="b1:demand_target_kw"):
        plan(site, frame, level="building", site_id="b1")


def test_each_park_of_a_city_plan_is_billed_above_its_own_target() -> None:
    """A city of two parks (battery, heat pump and heat store per building): a target of 1,000
    kW, above anything park n draws, frees n's import up to its rules' own peak (nothing shaved
    below what the days need, nothing drawn above it), while park s, without one, is planned as
    before; the month peaks stay the metered ones (0)."""
    north, north_columns = small_park("n", 1, import_max_kw=2000.0, chp=False, seed=1)
    south, south_columns = small_park("s", 1, import_max_kw=2000.0, chp=False, seed=2)
    site = city_site([north, south])
    frame = day_inputs(north_columns | south_columns)
    without = plan(site, frame, level="city", site_id="c")
    frame["n:demand_target_kw"] = 1000.0
    with_target = plan(site, frame, level="city", site_id="c")
    assert without.scalars["n:peak_import_kw"] > 0.0
    assert with_target.month_peak_kw == {"n": 0.0, "s": 0.0}
    assert with_target.scalars["n:peak_import_kw"] >= without.scalars["n:peak_import_kw"]
    assert with_target.scalars["s:peak_import_kw"] == pytest.approx(
        without.scalars["s:peak_import_kw"], abs=1e-3
    )
    assert with_target.cost_cny["demand"] < without.cost_cny["demand"]
    free = with_target.schedule["n:free_peak_kw"].iloc[0]
    assert free < 1000.0  # capped at the rules' own peak
    assert with_target.schedule["n:import_kw"].max() <= free + 1e-6
