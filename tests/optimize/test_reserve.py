"""The peak reserve (energyhub.optimize.reserve): a tail error kept covered by room under the
billed peak plus what the local controller could take off; objective values by hand."""

from __future__ import annotations

import pytest

from energyhub.optimize import plan
from energyhub.optimize.inputs import read_inputs
from energyhub.optimize.levels import build_model
from energyhub.optimize.scope import resolve_scope
from tests.optimize.cases import building_site, inputs
from tests.optimize.test_billing import BATTERY

PRICE = 0.5  # the cases' flat tariff, CNY/kWh
RATE = 40.0  # CNY/kW of the billed peak
LOAD_KW = [300.0, 450.0, 300.0]
EMPTY_BATTERY = {k: v for k, v in BATTERY.items() if k != "soc_final"} | {"soc_initial": 0.1}
"""test_billing's battery, empty at the start and free to end anywhere."""


def test_without_a_reserve_an_empty_battery_stays_empty() -> None:
    site = building_site([EMPTY_BATTERY], grid={"demand_charge_cny_per_kw": RATE})
    result = plan(site, inputs(3, b1__electricity_kw=LOAD_KW), level="building", site_id="b1",
                  month_peak_kw=450.0)  # fmt: skip
    assert result.objective_cny == pytest.approx(PRICE * sum(LOAD_KW), abs=1e-6)
    assert result.schedule["bess:soc_kwh"].to_numpy() == pytest.approx([20.0] * 3, abs=1e-6)


def test_a_reserve_at_the_peak_is_held_by_storage_charged_before_it() -> None:
    """Import 450 = the month peak at steps 1–3, where a 60 kW error must stay covered: the
    battery charges 60/0.9025 kWh in step 0 and holds them (60 kW for an hour above its minimum
    SOC) through steps 1 and 2, below the shortfall's price (60 kW × 40 × 1 % a step). At the
    last step, with no SOC to end at, it discharges them (import 390): the room under the peak
    is then the reserve. Energy 0.5·(1650 + 60/0.9025 − 60); no demand charge, the peak stays
    450."""
    load = [300.0, 450.0, 450.0, 450.0]
    site = building_site([EMPTY_BATTERY], grid={"demand_charge_cny_per_kw": RATE})
    frame = inputs(4, b1__electricity_kw=load, b1__peak_reserve_kw=[0.0, 60.0, 60.0, 60.0])
    result = plan(site, frame, level="building", site_id="b1", month_peak_kw=450.0)
    assert result.objective_cny == pytest.approx(
        PRICE * (sum(load) + 60 / 0.9025 - 60), abs=1e-6
    )
    assert result.cost_cny["demand"] == pytest.approx(0.0, abs=1e-6)
    assert result.scalars["b1:peak_import_kw"] == pytest.approx(450.0, abs=1e-6)
    assert result.schedule["b1:import_kw"].iloc[3] == pytest.approx(390.0, abs=1e-6)
    assert result.schedule["b1:reserve_shortfall_kw"].to_numpy() == pytest.approx(
        [0.0] * 4, abs=1e-6
    )


def test_a_reserve_never_holds_back_what_the_plan_runs() -> None:
    """The reserve's levers only count what is left: a full battery that must end empty and a
    heat store that must end lower still do (the same plan as without a reserve)."""
    full = EMPTY_BATTERY | {"soc_initial": 0.9, "soc_final": 0.1}
    store = {"id": "tes", "type": "thermal_storage", "carrier": "heat", "energy_kwh": 400,
             "power_kw": 200, "soc_initial": 0.8, "soc_final": 0.1}  # fmt: skip
    hp = {"id": "hp", "type": "heat_pump", "heat_max_kw": 300, "cop": 3.0}
    site = building_site([full, store, hp], grid={"demand_charge_cny_per_kw": RATE})
    columns = {"b1__electricity_kw": LOAD_KW, "b1__heat_kw": 100.0}
    results = [
        plan(site, inputs(3, **columns, **extra), level="building", site_id="b1", month_peak_kw=450.0)
        for extra in ({}, {"b1__peak_reserve_kw": 60.0})
    ]
    assert results[1].objective_cny == pytest.approx(results[0].objective_cny, abs=1e-6)


def test_a_reserve_nothing_can_hold_is_priced_not_billed_as_a_rise() -> None:
    """No storage: the 60 kW at step 1 stays short; the plan is the load, its peak is not raised
    and the shortfall's price is not among the plan's costs."""
    site = building_site([], grid={"demand_charge_cny_per_kw": RATE})
    frame = inputs(3, b1__electricity_kw=LOAD_KW, b1__peak_reserve_kw=[0.0, 60.0, 0.0])
    result = plan(site, frame, level="building", site_id="b1", month_peak_kw=450.0)
    assert result.objective_cny == pytest.approx(PRICE * sum(LOAD_KW), abs=1e-6)
    assert result.scalars["b1:peak_import_kw"] == pytest.approx(450.0, abs=1e-6)
    assert result.schedule["b1:reserve_shortfall_kw"].to_numpy() == pytest.approx(
        [0.0, 60.0, 0.0], abs=1e-6
    )


def test_a_chp_below_full_output_counts_toward_the_reserve() -> None:
    """A stopped CHP of 400 kW electric at full load: the controller could run it, so a 60 kW
    reserve needs nothing of the plan."""
    chp = {"id": "chp", "type": "chp", "fuel_max_kw": 1000, "eta_el": 0.4, "eta_th": 0.45}
    site = building_site(
        [chp, EMPTY_BATTERY], grid={"demand_charge_cny_per_kw": RATE},
        gas={"price_cny_per_nm3": 100.0, "lhv_kwh_per_nm3": 10.0},
    )  # fmt: skip
    frame = inputs(3, b1__electricity_kw=LOAD_KW, b1__heat_kw=0.0,
                   b1__peak_reserve_kw=[0.0, 60.0, 0.0])  # fmt: skip
    result = plan(site, frame, level="building", site_id="b1", month_peak_kw=450.0)
    assert result.objective_cny == pytest.approx(PRICE * sum(LOAD_KW), abs=1e-6)
    assert result.schedule["b1:reserve_shortfall_kw"].to_numpy() == pytest.approx([0.0] * 3)


@pytest.mark.parametrize(("soc", "short_kw"), [(0.5, 0.0), (0.0, 60.0)])
def test_a_fuel_cell_counts_toward_the_reserve_on_the_hydrogen_beside_it(
    soc: float, short_kw: float
) -> None:
    """A stopped 100 kW fuel cell (eta_el 0.5) beside a 400 kWh hydrogen store that must end
    where it starts: at half full (200 kWh, 100 kW for an hour) the controller could run it, so
    the 60 kW reserve needs nothing of the plan; with the store empty it gives nothing and the
    60 kW stay short. The plan is the load either way."""
    cell = {"id": "fc", "type": "fuel_cell", "power_max_kw": 100, "eta_el": 0.5, "eta_th": 0.3}
    store = {"id": "h2", "type": "hydrogen_store", "energy_kwh": 400, "power_kw": 200,
             "soc_initial": soc, "soc_final": soc}  # fmt: skip
    site = building_site([cell, store], grid={"demand_charge_cny_per_kw": RATE})
    frame = inputs(3, b1__electricity_kw=LOAD_KW, b1__heat_kw=0.0,
                   b1__peak_reserve_kw=[0.0, 60.0, 0.0])  # fmt: skip
    result = plan(site, frame, level="building", site_id="b1", month_peak_kw=450.0)
    assert result.objective_cny == pytest.approx(PRICE * sum(LOAD_KW), abs=1e-6)
    assert result.schedule["b1:reserve_shortfall_kw"].to_numpy() == pytest.approx(
        [0.0, short_kw, 0.0], abs=1e-6
    )


def test_daily_billing_keeps_no_reserve() -> None:
    site = building_site([EMPTY_BATTERY], grid={"demand_charge_cny_per_kw": RATE,
                                                "demand_billing": "daily"})  # fmt: skip
    frame = inputs(3, b1__electricity_kw=LOAD_KW, b1__peak_reserve_kw=60.0)
    scope = resolve_scope(site, "building", "b1")
    built = build_model(scope, read_inputs(frame, site.tz))
    assert not any("reserve" in name for name in built.problem.constraints)


@pytest.mark.parametrize(
    ("soc", "store_kw", "short_kw"),
    [
        (0.25, 200.0, 30.0),  # 100 kWh above the minimum: 100 kW of hydrogen, 50 kW from both
        (0.5, 40.0, 60.0),  # 200 kWh, but the store discharges at most 40 kW: 20 kW from both
    ],
)
def test_fuel_cells_beside_one_store_share_its_hydrogen_in_the_reserve(
    soc: float, store_kw: float, short_kw: float
) -> None:
    """Two stopped 100 kW fuel cells (eta_el 0.5) on one 400 kWh store: each counted all of the
    store's hydrogen and none its discharge limit, so together they covered the 80 kW reserve
    twice over what the controller could run (the guard shares the store between them)."""
    cells = [
        {"id": f"fc{i}", "type": "fuel_cell", "power_max_kw": 100, "eta_el": 0.5, "eta_th": 0.3}
        for i in (1, 2)
    ]
    store = {"id": "h2", "type": "hydrogen_store", "energy_kwh": 400, "power_kw": store_kw,
             "soc_initial": soc, "soc_final": soc}  # fmt: skip
    site = building_site([*cells, store], grid={"demand_charge_cny_per_kw": RATE})
    frame = inputs(3, b1__electricity_kw=LOAD_KW, b1__heat_kw=0.0,
                   b1__peak_reserve_kw=[0.0, 80.0, 0.0])  # fmt: skip
    result = plan(site, frame, level="building", site_id="b1", month_peak_kw=450.0)
    assert result.objective_cny == pytest.approx(PRICE * sum(LOAD_KW), abs=1e-6)
    assert result.schedule["b1:reserve_shortfall_kw"].to_numpy() == pytest.approx(
        [0.0, short_kw, 0.0], abs=1e-6
    )


@pytest.mark.parametrize(
    ("soc", "store_kw", "cooling_kw", "short_kw"),
    [
        (0.5, 200.0, 500.0, 0.0),  # 200 kWh above the minimum, 200 kW: 40 kW of electricity
        (0.0, 200.0, 500.0, 30.0),  # an empty store gives nothing
        (0.5, 100.0, 500.0, 10.0),  # the store discharges at most 100 kW: 20 kW
        (0.5, 200.0, 75.0, 15.0),  # the chiller makes 75 kW: the store takes over 15 kW of it
    ],
)
def test_a_cold_store_counts_toward_the_reserve_in_place_of_its_chiller(
    soc: float, store_kw: float, cooling_kw: float, short_kw: float
) -> None:
    """A chiller (COP 5, at full output on the building's cooling, so it cannot charge the store)
    beside a 400 kWh ice store that must end where it starts: the controller could discharge the
    store and run the chiller that much less, the import falling by the cold ÷ 5, within the
    store's power, its charge for an hour and what the chiller makes. The plan is the load and
    the chiller either way."""
    chiller = {"id": "ch", "type": "electric_chiller", "cooling_max_kw": cooling_kw, "cop": 5.0}
    ice = {"id": "ice", "type": "thermal_storage", "carrier": "cooling", "energy_kwh": 400,
           "power_kw": store_kw, "loss_per_h": 0.0, "eta_charge": 1.0, "eta_discharge": 1.0,
           "soc_initial": soc, "soc_final": soc}  # fmt: skip
    site = building_site([chiller, ice], grid={"demand_charge_cny_per_kw": RATE})
    frame = inputs(3, b1__electricity_kw=LOAD_KW, b1__heat_kw=0.0, b1__cooling_kw=cooling_kw,
                   b1__peak_reserve_kw=[0.0, 30.0, 0.0])  # fmt: skip
    result = plan(site, frame, level="building", site_id="b1",
                  month_peak_kw=450.0 + cooling_kw / 5.0)  # fmt: skip
    assert result.objective_cny == pytest.approx(
        PRICE * (sum(LOAD_KW) + 3 * cooling_kw / 5.0), abs=1e-6
    )
    assert result.schedule["b1:reserve_shortfall_kw"].to_numpy() == pytest.approx(
        [0.0, short_kw, 0.0], abs=1e-6
    )
