"""Δcost and ΔCO₂ of a plan against its baseline, why a worse plan is worse, grouped warnings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from energyhub.plans.store import PlanRecord
from energyhub.plans.verdict import grouped_warnings, verdict

NOW = datetime(2026, 12, 6, tzinfo=UTC)


def record(objective: float, co2: float, baseline: dict[str, Any], **extra: Any) -> PlanRecord:
    values: dict[str, Any] = {
        "id": 1, "level": "park", "site_id": "expo", "status": "draft", "horizon_start": NOW,
        "horizon_end": NOW, "step_s": 900, "objective_cny": objective,
        "cost_terms_cny": {"energy": objective - co2 * 0.06, "carbon": co2 * 0.06},
        "co2_kg": co2, "baseline": baseline, "solver": {"status": "optimal", "gap": 0.0},
        "inputs_ref": None, "inputs_hash": None, "warnings": [], "error": None,
        "created_by": None, "created_at": NOW, "updated_at": NOW, "approved_by": None,
        "approved_at": None, "activated_at": None, "rejected_by": None, "rejected_at": None,
        "rejected_reason": None, "superseded_by": None,
    }  # fmt: skip
    values.update(extra)
    return PlanRecord(**values)


def test_a_plan_that_saves_on_both() -> None:
    found = verdict(record(900.0, 80.0, {"cost_cny": 1000.0, "co2_kg": 100.0}))
    assert found is not None
    assert (found.cost.delta, found.cost.pct) == (pytest.approx(-100.0), pytest.approx(-10.0))
    assert (found.co2.delta, found.co2.pct) == (pytest.approx(-20.0), pytest.approx(-20.0))
    assert found.cost.worse is None and found.co2.worse is None
    assert found.cost.shown("CNY") == "−100.0 CNY (−10.0 %)"


def test_more_co2_than_the_baseline_says_why_with_the_carbon_price() -> None:
    """Plan 14 of the issue: 87,814 against 86,804 kg at 60 CNY/t."""
    baseline = {
        "cost_cny": 1000.0, "co2_kg": 86_804.0,
        "co2_kg_by_carrier": {"electricity": 86_804.0, "gas": 0.0},
    }  # fmt: skip
    solver = {"status": "optimal", "co2_kg_by_carrier": {"electricity": 87_814.0, "gas": 0.0}}
    found = verdict(record(900.0, 87_814.0, baseline, solver=solver))
    assert found is not None and found.co2.worse is not None
    assert found.co2.shown("kg") == "+1,010.0 kg (+1.2 %)"
    assert "storage losses" in found.co2.worse and "60 CNY/t" in found.co2.worse
    assert found.cost.worse is None


def test_more_gas_is_named() -> None:
    baseline = {"cost_cny": 10.0, "co2_kg": 10.0, "co2_kg_by_carrier": {"electricity": 10.0}}
    solver = {"status": "optimal", "co2_kg_by_carrier": {"electricity": 4.0, "gas": 8.0}}
    found = verdict(record(9.0, 12.0, baseline, solver=solver))
    assert found is not None and found.co2.worse is not None
    assert "burns more gas" in found.co2.worse


def test_a_costlier_plan_serving_what_the_baseline_leaves_unserved() -> None:
    baseline = {"cost_cny": 100.0, "co2_kg": 50.0, "unserved_kwh": {"heat": 120.0}}
    found = verdict(record(130.0, 50.0, baseline))
    assert found is not None and found.cost.worse is not None
    assert "120 kWh of demand unserved" in found.cost.worse
    assert found.co2.worse is None  # equal is not worse


def test_an_unsolved_plan_has_no_verdict() -> None:
    assert verdict(record(1.0, 1.0, {}, objective_cny=None)) is None


def test_warnings_group_by_kind_with_their_meters() -> None:
    warnings = [
        "forecast: b01/main: no reading for the last 2.8 h; the recent level comes from b01/f3",
        "forecast: b02/main: no reading for the last 3.1 h; the recent level comes from b02/f3",
        "forecast: l01/pv: clear sky × a default ratio of 0.8 instead",
        "forecast: l01/pv: clear sky × a default ratio of 0.8 instead",
        "b01-bess: no SOC reading; planned from soc_initial 0.5",
    ]
    groups = grouped_warnings(warnings)
    assert [len(g.texts) for g in groups] == [2, 1, 1]
    assert groups[0].subjects == ["b01/main", "b02/main"]
    assert groups[0].kind.startswith("forecast: no reading for the last … h")
    assert groups[1].subjects == ["l01/pv"]  # the repeated text once
    assert groups[2].subjects == ["b01-bess"]


def test_a_kind_groups_whatever_the_letters_of_the_site_it_names_again() -> None:
    """Figures are blanked, so b03 and b04 read alike, but l01 read `l…` against `b…`: the same
    note of two parks made two kinds until the subject's own site was blanked as well."""
    warnings = [
        f"{b}:cooling_kw: no cooling meter at {b}, taken as 0 (what drew stays in {b}:electricity_kw)"
        for b in ("b03", "l01", "lingang-x")
    ]
    groups = grouped_warnings([*warnings, "b03-hp: no COP at b04"])
    assert [g.subjects for g in groups] == [
        ["b03:cooling_kw", "l01:cooling_kw", "lingang-x:cooling_kw"],
        ["b03-hp"],  # another site named in the message stays as it is
    ]
    assert (
        groups[0].kind == "no cooling meter at …, taken as … (what drew stays in …:electricity_kw)"
    )


def test_more_gas_without_less_grid_power_is_the_stores_not_a_cheaper_fuel() -> None:
    """A heat-only building (gas boiler, heat store with a standing loss): the plan makes up
    the store's loss with gas, the baseline's idle store loses nothing. Before, the reason said
    the gas was cheaper than grid power, which the plan did not use less of."""
    baseline = {"cost_cny": 31_852.9, "co2_kg": 10_533.26,
                "co2_kg_by_carrier": {"electricity": 4_712.81, "gas": 5_820.45}}  # fmt: skip
    solver = {"status": "optimal",
              "co2_kg_by_carrier": {"electricity": 4_712.81, "gas": 5_822.92}}  # fmt: skip
    found = verdict(record(31_857.7, 10_535.73, baseline, solver=solver))
    assert found is not None and found.co2.worse is not None and found.cost.worse is not None
    assert "in place of no grid power" in found.co2.worse
    assert "cheaper than grid power" not in found.co2.worse
    assert "standing loss" in found.cost.worse
