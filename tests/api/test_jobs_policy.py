"""POST /plans with the site's carbon.plan_policy: the plan the policy asks for, as the scheduler
plans it (with a frontier, the point it picks), never above the policy's CO₂ limit when one is
reachable, and saying so when none is."""

from __future__ import annotations

import pytest

from energyhub.api.jobs import PlanJob, solve
from energyhub.optimize import Plan
from energyhub.plans.policy import CO2_TOLERANCE
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
    policy = {"max_abatement_cost_cny_per_t": 0, "frontier_points": 3,
              "max_cost_to_meet_co2_limit_cny_per_t": 1e5}  # fmt: skip
    site = building_site([BATTERY], carbon={"price_cny_per_t": 60, "plan_policy": policy})
    frame = inputs(
        2, b1__electricity_kw=100.0, import_price_cny_per_kwh=[0.3, 1.1], grid_kg_per_kwh=0.5
    )
    job = PlanJob(0, "building", "b1", frame, 30.0, frontier=3)
    chosen = solve(job, site)
    points = chosen.frontier
    assert points is not None and points[0]["co2_kg"] > chosen.baseline.co2_kg  # cost-optimal
    assert chosen.frontier_point != 0
    limit = chosen.baseline.co2_kg * (1 + CO2_TOLERANCE)
    assert chosen.co2_kg <= limit


NO_CEILING = {"max_cost_to_meet_co2_limit_cny_per_t": 1e5}
VALLEY_THEN_PEAK = {"import_price_cny_per_kwh": [0.3, 1.1], "grid_kg_per_kwh": 0.5}


def _solved(policy: dict[str, float], battery: dict[str, object]) -> Plan:
    site = building_site([battery], carbon={"price_cny_per_t": 60, "plan_policy": policy})
    frame = inputs(2, b1__electricity_kw=100.0, **VALLEY_THEN_PEAK)
    return solve(PlanJob(0, "building", "b1", frame, 30.0), site)


def test_a_co2_limit_caps_the_plan_at_its_baseline() -> None:
    """Without the policy the plan cycles the battery (valley to peak) and its losses emit
    108.4 kg against the idle baseline's 100; with max_co2_vs_baseline_pct 0 it is the cheapest
    plan at 100 kg, and says what that cost."""
    free = _solved({"max_co2_vs_baseline_pct": 100}, BATTERY)
    assert free.co2_kg == pytest.approx(100 + 200 * 0.4 * (1 / 0.9 - 0.9) * 0.5, rel=1e-6)
    assert free.carbon_policy["note"].endswith("the cost-optimal plan is within it")
    capped = _solved({"max_co2_vs_baseline_pct": 0, **NO_CEILING}, BATTERY)
    assert capped.baseline.co2_kg == pytest.approx(100.0)
    assert capped.co2_kg <= capped.baseline.co2_kg * (1 + CO2_TOLERANCE)
    assert capped.frontier == ()  # one capped solve, no frontier
    outcome = capped.carbon_policy
    assert outcome["met"] is True
    assert outcome["limit_co2_kg"] == pytest.approx(100.0)
    assert outcome["cost_optimal_co2_kg"] == pytest.approx(free.co2_kg)
    assert outcome["extra_cost_cny"] > 0
    assert "the cheapest plan capped at the limit" in outcome["note"]


def test_a_limit_dearer_than_the_ceiling_is_not_met_and_says_so() -> None:
    """Meeting the limit costs 52.5 CNY for 8.4 kg (6,221 CNY/t): above the default ceiling of
    1,000 CNY/t, so the plan is the one priced at 1,000 CNY/t (here still the cycling one),
    marked not met, not a plan at any price."""
    found = _solved({"max_co2_vs_baseline_pct": 0}, BATTERY)
    outcome = found.carbon_policy
    assert outcome["met"] is False
    assert found.co2_kg == pytest.approx(outcome["cost_optimal_co2_kg"], rel=1e-6)
    assert outcome["note"] == (
        "not met: CO2 108 kg > limit 100 kg (baseline 100 kg + 0 %): no schedule reaches the "
        "limit at up to 1,000 CNY/t (max_cost_to_meet_co2_limit_cny_per_t); this is the plan at "
        "a carbon price of 1,000 CNY/t"
    )


def test_a_store_that_must_be_refilled_is_credited_and_an_unreachable_limit_is_said() -> None:
    """From 20 % to a soc_final of 50 % the battery must take 60 kWh: the limit is the baseline
    plus what those kWh are worth (60 × 0.9 × 0.5 = 27 kg), below what the losses of charging
    them emit (60 ÷ 0.9 × 0.5 = 33.3 kg). No schedule reaches it: the plan is the one priced at
    the ceiling (here the least-CO₂ one), marked not met, with no error."""
    found = _solved(NO_CEILING, {**BATTERY, "soc_initial": 0.2})
    outcome = found.carbon_policy
    assert outcome["stored_kwh"] == pytest.approx(60.0)
    assert outcome["stored_co2_kg"] == pytest.approx(27.0)
    assert outcome["limit_co2_kg"] == pytest.approx(127.0)
    assert found.co2_kg == pytest.approx(100 + 60 / 0.9 * 0.5, rel=1e-5)
    assert outcome["met"] is False
    assert outcome["note"].startswith("not met: CO2 133 kg > limit 127 kg")
    assert (
        "no schedule reaches the limit at up to 100,000 CNY/t "
        "(max_cost_to_meet_co2_limit_cny_per_t); this is the plan at a carbon price of "
        "100,000 CNY/t; it costs 20 CNY more than the cost-optimal plan"
    ) in outcome["note"]
