"""A per-plan carbon cap (issue 9): it changes the plan, holds, and every plan reports CO₂."""

from __future__ import annotations

import pytest

from energyhub.optimize import InfeasiblePlanError, plan
from tests.optimize.cases import building_site, inputs

GAS = {"price_cny_per_nm3": 2.0, "lhv_kwh_per_nm3": 10.0}
CARBON = {"grid_kg_per_kwh": 0.5, "gas_kg_per_kwh": 0.2}


def _site() -> object:
    """Heat from a gas boiler or a heat pump; the grid and gas both emit."""
    assets = [
        {"id": "boiler", "type": "gas_boiler", "heat_max_kw": 100, "eta": 1.0},
        {"id": "hp", "type": "heat_pump", "heat_max_kw": 100, "cop": 4.0},
    ]
    return building_site(assets, gas=GAS, carbon=CARBON)


def test_a_carbon_cap_changes_the_plan_and_holds() -> None:
    """Heat by gas boiler: 0.1 CNY and 0.2 kg per kWh; by heat pump (COP 2, grid 0.5 CNY and
    0.1 kg per kWh): 0.25 CNY and 0.05 kg. Uncapped, gas; capped at half its CO₂, a mix."""
    assets = [
        {"id": "boiler", "type": "gas_boiler", "heat_max_kw": 100, "eta": 1.0},
        {"id": "hp", "type": "heat_pump", "heat_max_kw": 100, "cop": 2.0},
    ]
    site = building_site(assets, gas={"price_cny_per_nm3": 1.0, "lhv_kwh_per_nm3": 10.0},
                         carbon={"grid_kg_per_kwh": 0.1, "gas_kg_per_kwh": 0.2})  # fmt: skip
    frame = inputs(4, b1__electricity_kw=0.0, b1__heat_kw=50.0)
    free = plan(site, frame, level="building", site_id="b1")
    assert free.schedule["boiler:heat_kw"].sum() == pytest.approx(200.0)  # 4 h × 50 kW by gas
    assert free.co2_kg == pytest.approx(40.0)
    capped = plan(site, frame, level="building", site_id="b1", carbon_cap_kg=20.0)
    # 20 kg = 0.2·g + 0.05·(200 − g) → g = 66.7 kWh of heat by gas, 133.3 by heat pump
    assert capped.co2_kg == pytest.approx(20.0, abs=1e-6)
    assert capped.schedule["boiler:heat_kw"].sum() == pytest.approx(200.0 / 3.0, rel=1e-6)
    assert capped.objective_cny == pytest.approx(0.1 * 200 / 3 + 0.25 * 400 / 3, rel=1e-6)
    assert capped.objective_cny > free.objective_cny
    report = capped.to_json()
    assert report["carbon_cap_kg"] == 20.0
    assert report["co2_kg"] == pytest.approx(20.0, abs=1e-6)
    assert report["savings"]["co2_kg"] == pytest.approx(report["baseline"]["co2_kg"] - 20.0)


def test_an_unreachable_cap_names_itself() -> None:
    site = _site()
    frame = inputs(4, b1__electricity_kw=10.0, b1__heat_kw=50.0)
    with pytest.raises(InfeasiblePlanError, match="b1:carbon_cap cannot hold") as caught:
        plan(site, frame, level="building", site_id="b1", carbon_cap_kg=1.0)
    assert caught.value.constraint == "b1:carbon_cap"
