"""Heat and cooling a plan may leave unserved (energyhub.optimize.unserved): only where its inputs
allow it, within that column and the demand, at the counterfactual's price."""

from __future__ import annotations

import pytest

from energyhub.optimize import InfeasiblePlanError, plan
from energyhub.optimize.baseline import UNSERVED_CNY_PER_KWH
from energyhub.optimize.inputs import read_inputs
from energyhub.optimize.levels import build_model
from energyhub.optimize.plan import COST_TERMS
from energyhub.optimize.scope import resolve_scope
from tests.optimize.cases import building_site, inputs

CHILLER = {"id": "ch", "type": "electric_chiller", "cooling_max_kw": 1000, "cop": 5.0}
PRICE_CNY_PER_KWH = 0.5
"""The flat tariff of tests.optimize.cases."""


def test_a_balance_goes_short_only_as_far_as_the_column_allows_at_the_counterfactuals_price() -> (
    None
):
    """1,200 kW of cooling against a 1,000 kW chiller: no schedule without the column; with 500
    kW allowed, 200 kW is left unserved (1.2 CNY/kWh, the chiller's 0.1 CNY per kWh of cooling
    is cheaper), under the named block, and the chiller runs at its limit."""
    site = building_site([CHILLER])
    frame = inputs(4, b1__electricity_kw=100.0, b1__cooling_kw=1200.0)
    with pytest.raises(InfeasiblePlanError):
        plan(site, frame, level="building", site_id="b1")
    frame["b1:unserved_cooling_kw"] = 500.0
    found = plan(site, frame, level="building", site_id="b1")
    short = found.schedule["b1:unserved_cooling_kw"]
    assert short.tolist() == pytest.approx([200.0] * 4)
    assert found.cost_cny["unserved"] == pytest.approx(4 * 200.0 * UNSERVED_CNY_PER_KWH["cooling"])
    assert found.cost_cny["energy"] == pytest.approx(4 * (100.0 + 1000.0 / 5.0) * PRICE_CNY_PER_KWH)


def test_no_more_than_the_demand_and_no_block_without_the_column() -> None:
    """The column above the demand allows no more than the demand; a plan without the column
    has no such block and reports no `unserved` term."""
    site = building_site([CHILLER])
    scope = resolve_scope(site, "building", "b1")
    frame = inputs(2, b1__electricity_kw=100.0, b1__cooling_kw=300.0)
    plain = build_model(scope, read_inputs(frame, site.tz)).problem
    assert "b1:unserved_cooling_kw" not in plain.variables
    found = plan(site, frame, level="building", site_id="b1")
    assert set(found.cost_cny) == set(COST_TERMS)
    frame["b1:unserved_cooling_kw"] = 5000.0
    problem = build_model(scope, read_inputs(frame, site.tz)).problem
    block = problem.variables["b1:unserved_cooling_kw"]
    assert problem.col_upper[block.slice].tolist() == pytest.approx([300.0, 300.0])
    cheap = plan(site, frame, level="building", site_id="b1")
    assert cheap.cost_cny["unserved"] == pytest.approx(0.0, abs=1e-6)  # serving it is cheaper
