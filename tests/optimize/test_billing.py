"""Monthly demand billing: a plan pays the demand charge only on raising the month-to-date peak;
objective values against calculations by hand in each test's docstring."""

from __future__ import annotations

import pytest

from energyhub.errors import EnergyhubError
from energyhub.optimize import plan
from tests.optimize.cases import building_site, inputs

LOAD_KW = [300.0, 500.0, 400.0]
PRICE = 0.5  # the cases' flat tariff, CNY/kWh
RATE = 40.0  # CNY/kW of the billed peak
BATTERY = {
    "id": "bess",
    "type": "battery",
    "energy_kwh": 200,
    "power_kw": 100,
    "eta_charge": 0.95,
    "eta_discharge": 0.95,
    "soc_min": 0.1,
    "soc_max": 0.9,
    "soc_initial": 0.5,
    "soc_final": 0.5,
}


@pytest.mark.parametrize(
    ("month_peak_kw", "demand_cny"),
    [(0.0, RATE * 500), (450.0, RATE * 50), (600.0, 0.0)],
)
def test_only_the_rise_above_the_month_peak_is_billed(
    month_peak_kw: float, demand_cny: float
) -> None:
    """No assets: the plan is the load. Peak 500 kW; billed 500 − month peak, never below 0."""
    site = building_site([], grid={"demand_charge_cny_per_kw": RATE})
    frame = inputs(3, b1__electricity_kw=LOAD_KW)
    result = plan(site, frame, level="building", site_id="b1", month_peak_kw=month_peak_kw)
    energy = PRICE * sum(LOAD_KW)
    assert result.cost_cny["demand"] == pytest.approx(demand_cny, abs=1e-6)
    assert result.objective_cny == pytest.approx(energy + demand_cny, abs=1e-6)
    assert result.baseline.cost_cny["demand"] == pytest.approx(demand_cny, abs=1e-9)
    assert result.month_peak_kw == {"b1": month_peak_kw}
    assert result.to_json()["month_peak_kw"] == {"b1": month_peak_kw}
    assert result.to_json()["baseline"]["month_peak_kw"] == {"b1": month_peak_kw}


def test_daily_billing_ignores_the_month_peak() -> None:
    site = building_site([], grid={"demand_charge_cny_per_kw": RATE, "demand_billing": "daily"})
    frame = inputs(3, b1__electricity_kw=LOAD_KW)
    result = plan(site, frame, level="building", site_id="b1", month_peak_kw=450.0)
    assert result.cost_cny["demand"] == pytest.approx(RATE * 500, abs=1e-6)
    assert result.baseline.cost_cny["demand"] == pytest.approx(RATE * 500)


def test_a_battery_shaves_only_down_to_the_month_peak() -> None:
    """Month peak 450: discharging 50 kW in step 2 (SOC −50/0.95) and recharging 50/0.9025 kWh in
    step 1 keeps the peak at 450, so no demand charge; the energy is the load plus the losses:
    0.5·(1200 + 50/0.9025 − 50). Shaving below 450 would save nothing and lose more."""
    site = building_site([BATTERY], grid={"demand_charge_cny_per_kw": RATE})
    frame = inputs(3, b1__electricity_kw=LOAD_KW)
    result = plan(site, frame, level="building", site_id="b1", month_peak_kw=450.0)
    assert result.cost_cny["demand"] == pytest.approx(0.0, abs=1e-6)
    assert result.objective_cny == pytest.approx(
        PRICE * (sum(LOAD_KW) + 50 / 0.9025 - 50), abs=1e-6
    )
    assert result.scalars["b1:peak_import_kw"] == pytest.approx(450.0, abs=1e-6)
    assert result.baseline.total_cny == pytest.approx(PRICE * sum(LOAD_KW) + RATE * 50)


def test_a_forecast_margin_holds_the_import_that_much_lower_where_the_rules_leave_room() -> None:
    """Month peak 450, margin 60 kW at step 3, where the rules import 400 (room 100 under the
    rules' own peak of 500): the plan keeps import + margin under the billed 450, so it
    discharges 10 kW there (import 390) as well as the 50 kW that shave step 2, recharging
    60/0.9025 kWh in step 1; no demand charge; energy 0.5·(1200 + 60/0.9025 − 60)."""
    site = building_site([BATTERY], grid={"demand_charge_cny_per_kw": RATE})
    frame = inputs(3, b1__electricity_kw=LOAD_KW, b1__peak_margin_kw=[0.0, 0.0, 60.0])
    result = plan(site, frame, level="building", site_id="b1", month_peak_kw=450.0)
    assert result.schedule["b1:import_kw"].iloc[1] == pytest.approx(450.0, abs=1e-6)
    assert result.schedule["b1:import_kw"].iloc[2] == pytest.approx(390.0, abs=1e-6)
    assert result.cost_cny["demand"] == pytest.approx(0.0, abs=1e-6)
    assert result.objective_cny == pytest.approx(
        PRICE * (sum(LOAD_KW) + 60 / 0.9025 - 60), abs=1e-6
    )
    assert result.baseline.total_cny == pytest.approx(PRICE * sum(LOAD_KW) + RATE * 50)


@pytest.mark.parametrize("margin_kw", [20.0, 80.0, 500.0])
def test_a_margin_at_the_rules_own_peak_is_not_billed_as_a_rise(margin_kw: float) -> None:
    """Step 2 is the rules' peak (500 kW): there is no room under it for a margin, so the plan
    shaves to the month's 450 as it would without one (0.5·(1200 + 50/0.9025 − 50), no demand
    charge); before tariffs.kept_margin_kw an 80 kW margin was billed as a 30 kW rise."""
    site = building_site([BATTERY], grid={"demand_charge_cny_per_kw": RATE})
    frame = inputs(3, b1__electricity_kw=LOAD_KW, b1__peak_margin_kw=[0.0, margin_kw, 0.0])
    result = plan(site, frame, level="building", site_id="b1", month_peak_kw=450.0)
    assert result.schedule["b1:import_kw"].iloc[1] == pytest.approx(450.0, abs=1e-6)
    assert result.cost_cny["demand"] == pytest.approx(0.0, abs=1e-6)
    assert result.objective_cny == pytest.approx(
        PRICE * (sum(LOAD_KW) + 50 / 0.9025 - 50), abs=1e-6
    )


def test_a_margin_makes_no_room_for_charging_above_the_rules_peak() -> None:
    """A new month (peak 0) and a 200 kW battery that must go from 20 to 180 kWh. The rules peak
    at 500 kW in step 2, where the margin is 150 kW, as much as the rules leave no room for.
    Billing import + margin, the plan paid for a peak of import + 150 at step 2 and could then
    charge up to that level, less 60, in steps 1 and 3. Now the peak P is planned import only:
    steps 1 and 3 keep their 60 kW under it. Shaving d kW at step 2 (P = 500 − d) costs 40 CNY/kW
    less than it loses, so the plan shaves as far as charging allows: c1 ≤ 140 − d, c3 ≤ 40 − d
    and c1 + c3 = (160 + d/0.95)/0.95, so d = (180 − 160/0.95)/(2 + 1/0.9025)."""
    battery = {**BATTERY, "power_kw": 200, "soc_initial": 0.1, "soc_final": 0.9}
    site = building_site([battery], grid={"demand_charge_cny_per_kw": RATE})
    frame = inputs(3, b1__electricity_kw=LOAD_KW, b1__peak_margin_kw=[60.0, 150.0, 60.0])
    result = plan(site, frame, level="building", site_id="b1", month_peak_kw=0.0)
    imports = result.schedule["b1:import_kw"].to_numpy()
    shaved = (180 - 160 / 0.95) / (2 + 1 / 0.9025)
    peak = 500.0 - shaved
    assert result.scalars["b1:peak_import_kw"] == pytest.approx(peak, abs=1e-6)
    assert imports[1] == pytest.approx(peak, abs=1e-6)
    assert imports[0] == pytest.approx(peak - 60, abs=1e-6)
    assert imports[2] == pytest.approx(peak - 60, abs=1e-6)
    assert result.cost_cny["demand"] == pytest.approx(RATE * peak, abs=1e-6)
    assert result.objective_cny == pytest.approx(PRICE * imports.sum() + RATE * peak, abs=1e-6)


def test_daily_billing_keeps_no_margin() -> None:
    site = building_site([], grid={"demand_charge_cny_per_kw": RATE, "demand_billing": "daily"})
    frame = inputs(3, b1__electricity_kw=LOAD_KW, b1__peak_margin_kw=[0.0, 80.0, 0.0])
    result = plan(site, frame, level="building", site_id="b1")
    assert result.cost_cny["demand"] == pytest.approx(RATE * 500, abs=1e-6)


def test_an_inputs_column_wins_over_the_option() -> None:
    site = building_site([], grid={"demand_charge_cny_per_kw": RATE})
    frame = inputs(3, b1__electricity_kw=LOAD_KW, b1__month_peak_kw=480.0)
    result = plan(site, frame, level="building", site_id="b1", month_peak_kw=100.0)
    assert result.cost_cny["demand"] == pytest.approx(RATE * 20, abs=1e-6)


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_a_negative_month_peak_is_bad_input(bad: float) -> None:
    site = building_site([], grid={"demand_charge_cny_per_kw": RATE})
    with pytest.raises(EnergyhubError, match="--month-peak-kw: must be a number ≥ 0"):
        plan(site, inputs(3, b1__electricity_kw=LOAD_KW), level="building", site_id="b1",
             month_peak_kw=bad)  # fmt: skip


def test_a_month_peak_column_in_watts_is_caught() -> None:
    site = building_site([], grid={"demand_charge_cny_per_kw": RATE})
    frame = inputs(3, b1__electricity_kw=LOAD_KW, b1__month_peak_kw=450_000_000.0)
    with pytest.raises(EnergyhubError, match="b1:month_peak_kw"):
        plan(site, frame, level="building", site_id="b1")


def test_a_new_month_inside_the_horizon_is_billed_from_zero() -> None:
    """Steps 23:00 on 31 March and 00:00, 01:00 on 1 April (Shanghai), month-to-date peak 600 kW:
    March's step (300 kW) raises nothing, while April starts with no metered peak, so its 500 kW
    is all billed. Before, the whole horizon was held against March's 600 kW and April's charge
    was lost."""
    site = building_site([], grid={"demand_charge_cny_per_kw": RATE})
    frame = inputs(3, start="2025-03-31 23:00", b1__electricity_kw=LOAD_KW)
    result = plan(site, frame, level="building", site_id="b1", month_peak_kw=600.0)
    assert result.cost_cny["demand"] == pytest.approx(RATE * 500, abs=1e-6)
    assert result.baseline.cost_cny["demand"] == pytest.approx(RATE * 500, abs=1e-9)
    assert result.scalars["b1:peak_import_kw"] == pytest.approx(600.0, abs=1e-6)
    assert result.scalars["b1:peak_import_kw:2025-04"] == pytest.approx(500.0, abs=1e-6)


def test_a_battery_shaves_the_new_month_not_the_old() -> None:
    """The same steps with the battery at month peak 600 kW: it charges to full (180 kWh) in
    March's step, under March's untouched 600 kW, and levels April's two steps: discharge d at
    00:00, charge 100 − d at 01:00, back to 100 kWh: 180 − d/0.95 + 0.95·(100 − d) = 100, so
    d = 175/(1/0.95 + 0.95) and April's peak is 500 − d ≈ 412.6 kW, all of it billed."""
    site = building_site([BATTERY], grid={"demand_charge_cny_per_kw": RATE})
    frame = inputs(3, start="2025-03-31 23:00", b1__electricity_kw=LOAD_KW)
    result = plan(site, frame, level="building", site_id="b1", month_peak_kw=600.0)
    april_peak = 500.0 - 175.0 / (1 / 0.95 + 0.95)
    imports = result.schedule["b1:import_kw"].to_numpy()
    assert imports[1:] == pytest.approx([april_peak, april_peak], abs=1e-4)
    assert result.schedule["bess:soc_kwh"].iloc[0] == pytest.approx(180.0, abs=1e-6)
    assert result.cost_cny["demand"] == pytest.approx(RATE * april_peak, abs=1e-3)


def test_daily_billing_keeps_one_peak_across_a_month_end() -> None:
    site = building_site([], grid={"demand_charge_cny_per_kw": RATE, "demand_billing": "daily"})
    frame = inputs(3, start="2025-03-31 23:00", b1__electricity_kw=LOAD_KW)
    result = plan(site, frame, level="building", site_id="b1", month_peak_kw=600.0)
    assert result.cost_cny["demand"] == pytest.approx(RATE * 500, abs=1e-6)
    assert "b1:peak_import_kw:2025-04" not in result.scalars
