"""Tiny plans against optima computed by hand in each test's docstring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from energyhub.optimize import plan
from tests.optimize.cases import building_site, inputs

BATTERY = {
    "id": "bess",
    "type": "battery",
    "energy_kwh": 100,
    "power_kw": 100,
    "eta_charge": 0.9,
    "eta_discharge": 0.9,
    "soc_min": 0.0,
    "soc_max": 1.0,
    "soc_initial": 0.0,
}
GAS = {"price_cny_per_nm3": 3.0, "lhv_kwh_per_nm3": 10.0}


def test_battery_arbitrages_two_prices() -> None:
    """Charge 100 kW at 0.3 (SOC 90), discharge 81 kW at 1.1: 0.3·200 + 1.1·(100 − 81) = 80.9."""
    site = building_site([BATTERY])
    frame = inputs(2, b1__electricity_kw=100, import_price_cny_per_kwh=[0.3, 1.1])
    result = plan(site, frame, level="building", site_id="b1")
    assert result.status == "optimal"
    assert result.objective_cny == pytest.approx(80.9, abs=1e-6)
    assert result.cost_cny["energy"] == pytest.approx(80.9, abs=1e-6)
    np.testing.assert_allclose(result.schedule["bess:soc_kwh"], [90.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(result.schedule["bess:discharge_kw"], [0.0, 81.0], atol=1e-6)
    assert result.baseline.total_cny == pytest.approx(140.0)
    assert result.binaries == 0  # import ≥ export price and η < 1: the problem stays an LP


@pytest.mark.parametrize(
    ("electricity_price", "expected_cny", "heat_pump_kw"),
    [
        # heat pump heat 0.6/3 = 0.2 < boiler 0.3/0.9 = 0.333: 50 kW by HP (10) + 30 kW by boiler (10)
        (0.6, 20.0, 50.0),
        # heat pump heat 1.2/3 = 0.4 > 0.333: all 80 kW by the boiler, 80/0.9·0.3
        (1.2, 80 / 0.9 * 0.3, 0.0),
    ],
)
def test_heat_pump_against_boiler(
    electricity_price: float, expected_cny: float, heat_pump_kw: float
) -> None:
    """One hour of 80 kW heat from a 50 kW heat pump (COP 3) or a boiler (eta 0.9, gas 0.3/kWh)."""
    site = building_site(
        [
            {"id": "hp", "type": "heat_pump", "heat_max_kw": 50, "cop": 3.0},
            {"id": "boiler", "type": "gas_boiler", "heat_max_kw": 100, "eta": 0.9},
        ],
        gas=GAS,
    )
    frame = inputs(
        2, b1__electricity_kw=0, b1__heat_kw=80, import_price_cny_per_kwh=electricity_price
    )
    result = plan(site, frame, level="building", site_id="b1")
    assert result.objective_cny == pytest.approx(2 * expected_cny, abs=1e-6)
    np.testing.assert_allclose(result.schedule["hp:heat_kw"], heat_pump_kw, atol=1e-6)
    np.testing.assert_allclose(result.schedule["hp:electricity_kw"], heat_pump_kw / 3, atol=1e-6)


def test_demand_charge_makes_peak_shaving_pay() -> None:
    """Loads 100 and 300 kW: a lossless 200 kWh store moves 100 kW, peak 300 → 200 kW.

    Energy 0.5·400 = 200 either way; demand 10·300 = 3000 without, 10·200 = 2000 with.
    """
    battery = BATTERY | {
        "energy_kwh": 200,
        "power_kw": 200,
        "eta_charge": 1.0,
        "eta_discharge": 1.0,
        "soc_initial": 0.5,
        "soc_final": 0.5,
    }
    site = building_site([battery], grid={"demand_charge_cny_per_kw": 10})
    result = plan(site, inputs(2, b1__electricity_kw=[100, 300]), level="building", site_id="b1")
    assert result.cost_cny["energy"] == pytest.approx(200.0, abs=1e-6)
    assert result.cost_cny["demand"] == pytest.approx(2000.0, abs=1e-6)
    assert result.scalars["b1:peak_import_kw"] == pytest.approx(200.0, abs=1e-6)
    assert result.baseline.total_cny == pytest.approx(3200.0)
    assert result.to_json()["savings"]["cost_cny"] == pytest.approx(1000.0, abs=1e-6)


@pytest.mark.parametrize("min_load", [0.5, 0.0])
def test_chp_below_min_load_stays_off(min_load: float) -> None:
    """Heat 100 kW; CHP (fuel ≤ 1000, η_el 0.35, η_th 0.45) beats the boiler when it can run.

    At min_load 0.5 its least heat is 0.45·500 = 225 kW > 100: it stays off, the boiler pays
    100/0.9·0.3 = 33.33 and the grid 200·1.5 = 300 per hour. At min_load 0 it burns 222.2 kW
    (66.67 CNY gas) for 100 kW heat and 77.78 kW electricity: 66.67 + 122.22·1.5 = 250.
    """
    chp = {
        "id": "chp",
        "type": "chp",
        "fuel_max_kw": 1000,
        "eta_el": 0.35,
        "eta_th": 0.45,
        "min_load": min_load,
    }
    boiler = {"id": "boiler", "type": "gas_boiler", "heat_max_kw": 200, "eta": 0.9}
    site = building_site([chp, boiler], gas=GAS)
    frame = inputs(3, b1__electricity_kw=200, b1__heat_kw=100, import_price_cny_per_kwh=1.5)
    result = plan(site, frame, level="building", site_id="b1")
    if min_load > 0:
        assert result.binaries == 3
        np.testing.assert_allclose(result.schedule["chp:on"], 0.0, atol=1e-9)
        np.testing.assert_allclose(result.schedule["chp:fuel_kw"], 0.0, atol=1e-6)
        assert result.objective_cny == pytest.approx(3 * (100 / 0.9 * 0.3 + 300), abs=1e-6)
    else:
        assert result.binaries == 0
        np.testing.assert_allclose(result.schedule["chp:heat_kw"], 100.0, atol=1e-6)
        assert result.objective_cny == pytest.approx(3 * 250.0, abs=1e-6)


def test_start_cost_keeps_chp_running_through_a_dip() -> None:
    """Heat 100, 0, 100 kW; CHP min load 0 but start cost 50 ≫ its saving in the dip.

    Running it at 0 in the middle hour is free (on, fuel 0), so one start: 2·250 + 300 + 50 = 850.
    """
    chp = {
        "id": "chp",
        "type": "chp",
        "fuel_max_kw": 1000,
        "eta_el": 0.35,
        "eta_th": 0.45,
        "start_cost_cny": 50,
    }
    boiler = {"id": "boiler", "type": "gas_boiler", "heat_max_kw": 200, "eta": 0.9}
    site = building_site([chp, boiler], gas=GAS)
    frame = inputs(
        3, b1__electricity_kw=200, b1__heat_kw=[100, 0, 100], import_price_cny_per_kwh=1.5
    )
    result = plan(site, frame, level="building", site_id="b1", mip_gap=1e-9)
    assert result.cost_cny["start"] == pytest.approx(50.0, abs=1e-6)
    assert result.objective_cny == pytest.approx(2 * 250 + 300 + 50, abs=1e-6)


def test_pv_export_and_carbon_terms() -> None:
    """PV 300 kW, load 100 kW, export ≤ 150 at 0.4: export 150, curtail 50; CO₂ and carbon zero.

    Second hour no PV: import 100 at 0.5 (50 CNY), 0.5 kg/kWh → 50 kg, carbon 100 CNY/t → 5 CNY.
    """
    site = building_site(
        [{"id": "pv", "type": "pv", "peak_kw": 300}],
        grid={"export_max_kw": 150, "export_price_cny_per_kwh": 0.4},
        carbon={"grid_kg_per_kwh": 0.5, "price_cny_per_t": 100},
    )
    frame = inputs(2, b1__electricity_kw=100, pv__available_kw=[300, 0])
    result = plan(site, frame, level="building", site_id="b1")
    assert result.cost_cny["energy"] == pytest.approx(-60.0 + 50.0, abs=1e-6)
    assert result.co2_kg_by_carrier["electricity"] == pytest.approx(50.0, abs=1e-6)
    assert result.cost_cny["carbon"] == pytest.approx(5.0, abs=1e-6)
    np.testing.assert_allclose(result.schedule["pv:curtailed_kw"], [50.0, 0.0], atol=1e-6)
    assert result.baseline.total_cny == pytest.approx(result.objective_cny, abs=1e-6)


def test_hydrogen_chain_shifts_valley_power_to_the_peak() -> None:
    """Electrolyzer 100 kW (η 0.65) at 0.3, fuel cell (η_el 0.5, η_th 0.3) at 1.1.

    65 kWh H₂ → 32.5 kWh electricity (saves 35.75) + 19.5 kWh heat (saves 19.5/0.9·0.3 = 6.5)
    for 30: 140 + 133.33 − 12.25 = 261.083.
    """
    site = building_site(
        [
            {"id": "ely", "type": "electrolyzer", "power_max_kw": 100, "eta": 0.65},
            {"id": "h2", "type": "hydrogen_store", "energy_kwh": 1000, "power_kw": 500,
             "soc_initial": 0.0, "soc_min": 0.0},
            {"id": "fc", "type": "fuel_cell", "power_max_kw": 200, "eta_el": 0.5, "eta_th": 0.3},
            {"id": "boiler", "type": "gas_boiler", "heat_max_kw": 300, "eta": 0.9},
        ],
        gas=GAS,
    )  # fmt: skip
    frame = inputs(2, b1__electricity_kw=100, b1__heat_kw=200, import_price_cny_per_kwh=[0.3, 1.1])
    result = plan(site, frame, level="building", site_id="b1")
    assert result.objective_cny == pytest.approx(140 + 400 / 0.9 * 0.3 - 12.25, abs=1e-6)
    np.testing.assert_allclose(result.schedule["ely:hydrogen_kw"], [65.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(result.schedule["fc:heat_kw"], [0.0, 19.5], atol=1e-6)


def test_a_fuel_cell_runs_for_power_where_its_heat_has_no_taker() -> None:
    """No heat demand, and a hydrogen store at 60 % that must end at 20 %: the fuel cell must
    turn 400 kWh of hydrogen into 200 kWh of electricity (eta_el 0.5) over the two hours (100 kW
    each, the building's whole load, so nothing is imported), and its cooling loop rejects the
    120 kWh of heat (eta_th 0.3) nobody takes. Before, the heat had to go somewhere: infeasible."""
    site = building_site(
        [
            {"id": "h2", "type": "hydrogen_store", "energy_kwh": 1000, "power_kw": 500,
             "soc_initial": 0.6, "soc_min": 0.0, "soc_final": 0.2},
            {"id": "fc", "type": "fuel_cell", "power_max_kw": 200, "eta_el": 0.5, "eta_th": 0.3},
        ],
    )  # fmt: skip
    frame = inputs(2, b1__electricity_kw=100, b1__heat_kw=0, import_price_cny_per_kwh=1.1)
    result = plan(site, frame, level="building", site_id="b1")
    assert result.objective_cny == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(result.schedule["fc:electricity_kw"], [100.0, 100.0], atol=1e-6)
    np.testing.assert_allclose(result.schedule["fc:heat_kw"], [0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(result.schedule["fc:heat_rejected_kw"], [60.0, 60.0], atol=1e-6)


def test_flexible_load_runs_in_the_cheapest_hour_of_its_window() -> None:
    """100 kWh within 09–11 at ≤ 100 kW; prices 0.1, 0.8, 0.5, 0.1 from 08:00: all at 10:00."""
    flex = {"id": "ev", "type": "flexible_load", "power_max_kw": 100, "energy_kwh": 100,
            "window_start_h": 9, "window_end_h": 11}  # fmt: skip
    frame = inputs(
        4, start="2025-03-03 08:00", b1__electricity_kw=0,
        import_price_cny_per_kwh=[0.1, 0.8, 0.5, 0.1],
    )  # fmt: skip
    result = plan(building_site([flex]), frame, level="building", site_id="b1")
    np.testing.assert_allclose(result.schedule["ev:power_kw"], [0, 0, 100, 0], atol=1e-6)
    assert result.objective_cny == pytest.approx(50.0, abs=1e-6)
    assert result.baseline.total_cny == pytest.approx(80.0)  # run at once from 09:00


OVERNIGHT = {"id": "ev", "type": "flexible_load", "power_max_kw": 100, "energy_kwh": 100,
             "window_start_h": 22, "window_end_h": 6}  # fmt: skip


def test_an_overnight_window_is_one_window_across_midnight() -> None:
    """22:00–06:00 from noon: the cheapest hour of the night is 03:00 the next morning; the
    rule-based baseline runs at once from 22:00."""
    prices = np.full(24, 0.5)
    prices[15] = 0.1  # 03:00 the next day
    frame = inputs(24, start="2025-03-03 12:00", b1__electricity_kw=0,
                   import_price_cny_per_kwh=prices)  # fmt: skip
    result = plan(building_site([OVERNIGHT]), frame, level="building", site_id="b1")
    expected = np.zeros(24)
    expected[15] = 100.0
    np.testing.assert_allclose(result.schedule["ev:power_kw"], expected, atol=1e-6)
    assert result.objective_cny == pytest.approx(10.0, abs=1e-6)
    assert result.baseline.total_cny == pytest.approx(50.0)


def test_a_horizon_from_midnight_holds_the_end_of_one_night_and_the_start_of_the_next() -> None:
    """From 00:00: 6 of the first night's 8 hours (75 kWh) and 2 of the next one's (25 kWh)."""
    frame = inputs(24, b1__electricity_kw=0)
    result = plan(building_site([OVERNIGHT]), frame, level="building", site_id="b1")
    power = np.asarray(result.schedule["ev:power_kw"])
    assert power[:6].sum() == pytest.approx(75.0, abs=1e-6)
    assert power[6:22].sum() == pytest.approx(0.0, abs=1e-6)
    assert power[22:].sum() == pytest.approx(25.0, abs=1e-6)


def test_an_overnight_window_across_the_fall_back_lasts_nine_hours() -> None:
    """Berlin, night of 24–25 Oct 2026: 22:00–06:00 lasts 9 h; from the local midnight, the
    steps hold 7 of them (7/9 of energy_kwh)."""
    site = building_site([OVERNIGHT]).model_copy(update={"timezone": "Europe/Berlin"})
    index = pd.date_range(pd.Timestamp("2026-10-24 12:00", tz="Europe/Berlin"), periods=25 * 4,
                          freq="15min", name="ts")  # fmt: skip
    whole = plan(site, pd.DataFrame({"b1:electricity_kw": 0.0}, index=index), level="building",
                 site_id="b1")  # fmt: skip
    assert whole.schedule["ev:power_kw"].sum() * 0.25 == pytest.approx(100.0, abs=1e-6)
    index = pd.date_range(pd.Timestamp("2026-10-25 00:00", tz="Europe/Berlin"), periods=25 * 4,
                          freq="15min", name="ts")  # fmt: skip
    part = plan(site, pd.DataFrame({"b1:electricity_kw": 0.0}, index=index), level="building",
                site_id="b1")  # fmt: skip
    morning = part.schedule["ev:power_kw"][
        index < pd.Timestamp("2026-10-25 12:00", tz="Europe/Berlin")
    ]
    assert morning.sum() * 0.25 == pytest.approx(700 / 9, abs=1e-6)


def test_a_window_open_at_the_start_asks_what_is_left_of_its_energy() -> None:
    """From 00:00 in the 22:00–06:00 window, 6 of its 8 hours are left. Told 90 of its 100 kWh
    were served since 22:00, the night asks 10 kWh (not 75, its share of the hours); told 0, it
    asks 100; at 15 kW, 6 h serve only 90 of them. The next night's first 2 h ask 25 kWh either
    way, and the rule-based baseline serves what the plan does (one price all day)."""
    slow = {**OVERNIGHT, "power_max_kw": 15}
    for served, flex, night in (
        (90.0, OVERNIGHT, 10.0),
        (0.0, OVERNIGHT, 100.0),
        (0.0, slow, 90.0),
    ):
        frame = inputs(24, b1__electricity_kw=0, import_price_cny_per_kwh=0.5)
        frame["ev:delivered_kwh"] = served
        result = plan(building_site([flex]), frame, level="building", site_id="b1")
        power = np.asarray(result.schedule["ev:power_kw"])
        assert power[:6].sum() == pytest.approx(night, abs=1e-6)
        assert power[22:].sum() == pytest.approx(25.0, abs=1e-6)
        assert result.baseline.cost_cny["energy"] == pytest.approx(
            result.cost_cny["energy"], abs=1e-6
        )


def test_energy_served_so_far_must_be_a_plausible_kwh() -> None:
    """A negative or W-sized delivered_kwh is refused, naming the column."""
    from energyhub.optimize.errors import PlanInputError

    for bad in (-1.0, 1e6):
        frame = inputs(24, b1__electricity_kw=0)
        frame["ev:delivered_kwh"] = bad
        with pytest.raises(PlanInputError, match="ev:delivered_kwh"):
            plan(building_site([OVERNIGHT]), frame, level="building", site_id="b1")


@pytest.mark.parametrize(
    ("heat_kw", "discharged_kw"),
    [
        # no heat demand: nothing can take the 400 kWh above soc_final, so the store stays idle
        # and ends at 900 · 0.99² = 882.09 kWh (its standing loss only); before: infeasible
        (0.0, 0.0),
        # 100 kW for two hours: the store serves it all (200 kWh), the boiler stays off
        (100.0, 100.0),
    ],
)
def test_a_heat_store_above_its_soc_final_ends_above_where_nothing_takes_the_rest(
    heat_kw: float, discharged_kw: float
) -> None:
    """A heat store at 90 % (as a re-plan reads it off its SOC meter) with soc_final 50 % and
    less heat demand than the 400 kWh it should let out: it serves what demand there is and
    keeps the rest (a heat-only building in a mild week, an ice store in winter)."""
    site = building_site(
        [
            {"id": "tes", "type": "thermal_storage", "carrier": "heat", "energy_kwh": 1000,
             "power_kw": 500, "loss_per_h": 0.01, "soc_min": 0.0, "soc_initial": 0.9,
             "soc_final": 0.5},
            {"id": "boiler", "type": "gas_boiler", "heat_max_kw": 500, "eta": 0.9},
        ],
        gas=GAS,
    )  # fmt: skip
    frame = inputs(2, b1__electricity_kw=10, b1__heat_kw=heat_kw)
    result = plan(site, frame, level="building", site_id="b1")
    assert result.status == "optimal"
    assert result.objective_cny == pytest.approx(10.0, abs=1e-4)  # 20 kWh at 0.5, no gas
    np.testing.assert_allclose(result.schedule["tes:discharge_kw"], discharged_kw, atol=1e-6)
    np.testing.assert_allclose(result.schedule["boiler:heat_kw"], 0.0, atol=1e-6)
    soc = (900.0 * 0.99 - discharged_kw) * 0.99 - discharged_kw
    assert result.schedule["tes:soc_kwh"].iloc[-1] == pytest.approx(soc, abs=1e-4)
    assert soc > 500.0
