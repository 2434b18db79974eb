"""The cost–CO₂ frontier against a case solved by hand (see the docstring)."""

from __future__ import annotations

import pandas as pd
import pytest

from energyhub.errors import EnergyhubError
from energyhub.optimize.frontier import frontier, pick
from energyhub.sites import PlanPolicy, SiteFile
from tests.optimize.cases import building_site, inputs

BATTERY = {
    "id": "bess", "type": "battery", "energy_kwh": 100, "power_kw": 100, "eta_charge": 1.0,
    "eta_discharge": 1.0, "soc_min": 0.0, "soc_max": 1.0, "soc_initial": 0.0,
}  # fmt: skip
MAC_CNY_PER_T = 0.8 / 0.6 * 1000


def case() -> tuple[SiteFile, pd.DataFrame]:
    """Load 100 kW for two hours; price 0.3 then 1.1, grid 0.8 then 0.2 kg/kWh; a lossless
    100 kWh battery starting empty. Shifting x kWh from hour 2 to hour 1 saves 0.8·x CNY and adds
    0.6·x kg: cost-optimal x = 100 (cost 60, CO₂ 160), CO₂-optimal x = 0 (cost 140, CO₂ 100), and
    every tonne avoided costs 0.8/0.6 CNY/kg = 1,333.3 CNY/t."""
    site = building_site([BATTERY])
    frame = inputs(
        2, b1__electricity_kw=100, import_price_cny_per_kwh=[0.3, 1.1], grid_kg_per_kwh=[0.8, 0.2]
    )
    return site, frame


def test_three_points_from_cost_optimal_to_co2_optimal() -> None:
    site, frame = case()
    found = frontier(site, frame, level="building", site_id="b1", points=3)
    points = [p for p, _ in found]
    assert [p.co2_kg for p in points] == pytest.approx([160.0, 130.0, 100.0], abs=1e-3)
    assert [p.cost_cny for p in points] == pytest.approx([60.0, 100.0, 140.0], abs=1e-3)
    assert points[0].cap_kg is None and points[0].abatement_cny_per_t is None
    assert [p.abatement_cny_per_t for p in points[1:]] == pytest.approx(
        [MAC_CNY_PER_T] * 2, rel=1e-4
    )
    assert found[1][1].carbon_cap_kg == pytest.approx(130.0)
    assert found[1][1].schedule["bess:charge_kw"].iloc[0] == pytest.approx(50.0, abs=1e-3)


@pytest.mark.parametrize(("limit", "chosen"), [(1000.0, 0), (1400.0, 2)])
def test_the_policy_abates_while_a_tonne_costs_at_most_its_limit(limit: float, chosen: int) -> None:
    site, frame = case()
    points = [p for p, _ in frontier(site, frame, level="building", site_id="b1", points=3)]
    assert pick(points, PlanPolicy(max_abatement_cost_cny_per_t=limit)) == chosen


def test_one_point_is_no_frontier() -> None:
    site, frame = case()
    with pytest.raises(EnergyhubError, match="--frontier: must be 2 to 11 points, got 1"):
        frontier(site, frame, level="building", site_id="b1", points=1)


def test_a_frontier_with_nothing_to_trade_says_so() -> None:
    """With the grid as clean in both hours, storing saves money and avoids no CO₂: the
    cost-optimal plan is the least-CO₂ one, and its one point says why there are no others."""
    site = building_site([BATTERY])
    frame = inputs(
        2, b1__electricity_kw=100, import_price_cny_per_kwh=[0.3, 1.1], grid_kg_per_kwh=0.5
    )
    found = frontier(site, frame, level="building", site_id="b1", points=5)
    assert len(found) == 1
    point, result = found[0]
    assert point.co2_kg == pytest.approx(100.0, abs=1e-3)
    assert [n for n in result.notes if "frontier" in n] == [
        "frontier: the cost-optimal plan is also the least-CO₂ one (100 kg; at any carbon price "
        "none emits less), so the frontier is that one point, not 5"
    ]


def test_a_frontier_with_a_trade_has_no_such_note() -> None:
    found = frontier(*case(), level="building", site_id="b1", points=3)
    assert not [n for _, plan in found for n in plan.notes if "frontier" in n]
