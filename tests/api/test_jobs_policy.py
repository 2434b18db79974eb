"""POST /plans with a frontier: the site's carbon.plan_policy picks the point as the scheduler
does, never one above the baseline's CO₂."""

from __future__ import annotations

from energyhub.api.jobs import PlanJob, solve
from energyhub.scheduler.replan import BASELINE_CO2_TOLERANCE
from tests.optimize.cases import building_site, inputs

BATTERY = {
    "id": "bess", "type": "battery", "energy_kwh": 200, "power_kw": 100,
    "eta_charge": 0.9, "eta_discharge": 0.9, "soc_min": 0.1, "soc_max": 0.9,
    "soc_initial": 0.5, "soc_final": 0.5,
}  # fmt: skip


def test_the_policy_point_of_an_api_frontier_stays_within_the_baseline_co2() -> None:
    """A valley and a peak hour: the cost-optimal plan cycles the battery and its losses emit
    more than the idle baseline; a policy that abates at no price would take that point, the
    baseline check moves to one that emits no more than the baseline."""
    policy = {"max_abatement_cost_cny_per_t": 0, "frontier_points": 3}
    site = building_site([BATTERY], carbon={"price_cny_per_t": 60, "plan_policy": policy})
    frame = inputs(
        2, b1__electricity_kw=100.0, import_price_cny_per_kwh=[0.3, 1.1], grid_kg_per_kwh=0.5
    )
    job = PlanJob(0, "building", "b1", frame, 30.0, frontier=3)
    chosen = solve(job, site)
    points = chosen.frontier
    assert points is not None and points[0]["co2_kg"] > chosen.baseline.co2_kg  # cost-optimal
    assert chosen.frontier_point != 0
    limit = chosen.baseline.co2_kg * (1 + BASELINE_CO2_TOLERANCE)
    assert chosen.co2_kg <= limit
