"""A CHP's heat is used, never dumped, unless the import limit asks for its power; a park's own
heat reaches its buildings as district heat before their boilers burn, as the planner models it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from energyhub.sites import CHP, GasBoiler, SiteFile
from simulators.devices import Balance, Flows, dispatch
from simulators.plant import build_plant, redispatch_park
from simulators.weather import TimeGrid

CHP_UNIT = CHP(
    id="chp", type="chp", fuel_max_kw=1000, eta_el=0.35, eta_th=0.45, min_load=0.4
)  # full: 350 kW electric, 450 kW heat; minimum 140 kW electric
BOILER = GasBoiler(id="boiler", type="gas_boiler", heat_max_kw=1000, eta=0.9)


def _node(
    heat_kw: list[float], setpoint_kw: list[float], free: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
    steps = len(heat_kw)
    zeros = np.zeros(steps)
    balance = Balance(np.full(steps, 12.0), zeros + 5.0, np.array(heat_kw), zeros.copy())
    flows = {
        "chp": Flows.zeros(("electricity", "gas", "heat"), steps),
        "boiler": Flows.zeros(("heat", "gas"), steps),
    }
    sp = {"chp": np.array(setpoint_kw)}
    dispatch([CHP_UNIT, BOILER], flows, balance, slice(None), sp, free)
    return {
        "chp_kw": flows["chp"].readings["electricity"],
        "chp_heat_kw": flows["chp"].readings["heat"],
        "boiler_heat_kw": flows["boiler"].readings["heat"],
        "unused_heat_kw": balance.recovered,
    }


def test_a_chp_is_turned_down_to_the_heat_used_and_stops_well_below_its_minimum_load() -> None:
    out = _node([600.0, 200.0, 179.0, 100.0, 80.0, 300.0], [350.0] * 5 + [0.0])
    # 600 kW of demand takes all 450 kW of heat; 200 kW runs it at 200/0.45·0.35 = 155.6 kW;
    # its minimum, 140 kW, makes 180 kW of heat: at 179 and 100 kW of demand (≥ half of it) it
    # stays at its minimum and dumps the rest; 80 kW is under half: it stops, the boiler serves
    assert out["chp_kw"] == pytest.approx([350.0, 200 / 0.45 * 0.35, 140.0, 140.0, 0.0, 0.0])
    assert out["boiler_heat_kw"] == pytest.approx([150.0, 0.0, 0.0, 0.0, 80.0, 300.0])
    assert out["unused_heat_kw"] == pytest.approx([0.0, 0.0, 1.0, 80.0, 0.0, 0.0])


def test_the_heat_a_chp_held_at_its_minimum_dumps_turns_the_one_before_it_down() -> None:
    # 900 kW of heat made, 550 used: the second unit would make 100 kW (77.8 kW electric, under
    # its minimum but over half of it): held at 140 kW (180 of heat), the first takes the 80 off
    steps = 1
    zeros = np.zeros(steps)
    second = CHP_UNIT.model_copy(update={"id": "chp2"})
    balance = Balance(np.full(steps, 12.0), zeros + 5.0, np.array([550.0]), zeros.copy())
    flows = {a: Flows.zeros(("electricity", "gas", "heat"), steps) for a in ("chp", "chp2")}
    flows["boiler"] = Flows.zeros(("heat", "gas"), steps)
    sp = {"chp": np.array([350.0]), "chp2": np.array([350.0])}
    dispatch([CHP_UNIT, second, BOILER], flows, balance, slice(None), sp)
    assert flows["chp2"].readings["electricity"] == pytest.approx([140.0])
    assert flows["chp"].readings["heat"] == pytest.approx([370.0])
    assert balance.recovered == pytest.approx([0.0])  # nothing dumped


def test_a_chp_held_for_the_import_limit_runs_as_asked_its_heat_used_or_not() -> None:
    out = _node([100.0], [350.0], free=("chp",))
    assert out["chp_kw"] == pytest.approx([350.0])
    assert out["unused_heat_kw"] == pytest.approx([350.0])  # 450 made, 100 used


SITE = {
    "version": 1,
    "timezone": "Asia/Shanghai",
    "city": {
        "id": "c",
        "parks": [
            {
                "id": "p",
                "grid": {"import_max_kw": 10000},
                "gas": {"price_cny_per_nm3": 3.8, "lhv_kwh_per_nm3": 9.97},
                "assets": [
                    {"id": "p-chp", "type": "chp", "fuel_max_kw": 1000, "eta_el": 0.35,
                     "eta_th": 0.45, "min_load": 0.4},
                    {"id": "p-absorption", "type": "absorption_chiller", "cooling_max_kw": 200,
                     "cop": 0.7},
                ],
                "buildings": [
                    {"id": "b", "class": "office-A", "floor_area_m2": 60000,
                     "assets": [
                         {"id": "b-hp", "type": "heat_pump", "heat_max_kw": 100, "cop": 3.0},
                         {"id": "b-boiler", "type": "gas_boiler", "heat_max_kw": 5000,
                          "eta": 0.9},
                         {"id": "b-chiller", "type": "electric_chiller", "cooling_max_kw": 100,
                          "cop": 5.0},
                     ]},
                ],
            }
        ],
    },
}  # fmt: skip


def test_park_heat_serves_the_buildings_before_their_boilers_and_is_never_dumped() -> None:
    site = SiteFile.model_validate(SITE)
    start = datetime(2026, 1, 12, tzinfo=ZoneInfo("Asia/Shanghai"))
    plant = build_plant(site, TimeGrid(start, 900.0, 96), seed=3)
    park = plant.parks[0]
    building = park.children[0]
    sl = slice(0, 96)
    full = {"p": {"p-chp": np.full(96, 350.0)}}  # the plan asks for full output all day
    redispatch_park(park, plant.hours, plant.weather, sl, full)
    chp_heat = park.flows["p-chp"].readings["heat"]
    absorbed = park.flows["p-absorption"].readings["heat"]
    assert building.loads is not None
    demand = building.loads.heat_kw
    own = building.flows["b-hp"].readings["heat"] + building.flows["b-boiler"].readings["heat"]
    district = chp_heat - absorbed
    assert chp_heat.max() > 0
    # every kW of the CHP's heat is used: by the absorption chiller or by the building
    assert own + district == pytest.approx(np.maximum(demand, own), abs=1e-6)
    assert district == pytest.approx(np.minimum(district, demand), abs=1e-6)
    # the boiler burns only for what the heat pump and the district heat leave
    hp = building.flows["b-hp"].readings["heat"]
    assert building.flows["b-boiler"].readings["heat"] == pytest.approx(
        np.maximum(demand - hp - district, 0.0), abs=1e-6
    )
    # the absorption chiller makes only the cooling the building's chiller leaves
    cooling_left = building.loads.cooling_kw - building.flows["b-chiller"].readings["cooling"]
    absorbed_cooling = park.flows["p-absorption"].readings["cooling"]
    assert np.all(absorbed_cooling <= np.maximum(cooling_left, 0.0) + 1e-6)
    assert park.grid_kw[sl] == pytest.approx(
        building.grid_kw[sl] - park.flows["p-chp"].readings["electricity"][sl]
    )


def test_in_summer_a_park_chp_runs_for_the_cooling_its_heat_makes() -> None:
    """No heat demand: the CHP's heat has only the absorption chiller, which makes only the
    cooling the building's chiller leaves; the CHP is turned down to that, held at its minimum
    while it uses half of the minimum's heat, and stopped below."""
    site = SiteFile.model_validate(SITE)
    start = datetime(2026, 7, 13, tzinfo=ZoneInfo("Asia/Shanghai"))
    plant = build_plant(site, TimeGrid(start, 900.0, 96), seed=3)
    park = plant.parks[0]
    sl = slice(0, 96)
    redispatch_park(park, plant.hours, plant.weather, sl, {"p": {"p-chp": np.full(96, 350.0)}})
    electric = park.flows["p-chp"].readings["electricity"]
    heat = park.flows["p-chp"].readings["heat"]
    absorbed = park.flows["p-absorption"].readings["heat"]
    min_kw, min_heat = 140.0, 180.0
    assert electric.min() < 350.0  # turned down where the cooling does not take it all
    above = electric > min_kw + 1e-6
    assert heat[above] == pytest.approx(absorbed[above], abs=1e-6)  # no heat dumped
    at_min = np.isclose(electric, min_kw)
    assert np.all(absorbed[at_min] >= 0.5 * min_heat - 1e-6)
    stopped = electric < 1e-9
    assert np.all(heat[stopped] == 0.0)
    assert np.all(above | at_min | stopped)
