"""A building with its own `grid:` is billed its own demand charge on its own peak, whoever plans
it: its building plan, its park's plan and the city's bill the same figure; objective values
against calculations by hand in each test's docstring."""

from __future__ import annotations

from typing import Any

import pytest

from energyhub.errors import EnergyhubError
from energyhub.optimize import plan
from energyhub.optimize.coupling import Caps
from energyhub.optimize.inputs import read_inputs
from energyhub.optimize.levels import build_building
from energyhub.optimize.model import evaluate, solve
from energyhub.optimize.runner import recipes
from energyhub.optimize.scope import resolve_scopes
from energyhub.sites import SiteFile, parse_site
from tests.optimize.cases import inputs

B1_KW = [300.0, 500.0, 400.0]
B2_KW = [100.0, 100.0, 100.0]
PRICE = 0.5  # flat tariff of both connections, CNY/kWh
RATE = 40.0  # CNY/kW of b1's own billed peak
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


def _site(b1_assets: list[dict[str, Any]], park_rate: float = 0.0) -> SiteFile:
    """Park `p` (its own connection billing `park_rate`) of b1, with its own connection billing
    RATE, and b2 on the park's connection alone."""
    flat = {"tariff": "flat", "tariff_prices_cny_per_kwh": {"flat": PRICE}}
    park = {
        "id": "p",
        "grid": {"import_max_kw": 10000, "demand_charge_cny_per_kw": park_rate, **flat},
        "buildings": [
            {"id": "b1", "class": "office-A", "floor_area_m2": 1000, "assets": b1_assets,
             "grid": {"import_max_kw": 2000, "demand_charge_cny_per_kw": RATE, **flat}},
            {"id": "b2", "class": "office-A", "floor_area_m2": 1000, "assets": []},
        ],
    }  # fmt: skip
    city = {"id": "c", "carbon": {"price_cny_per_t": 0}, "parks": [park]}
    return parse_site({"version": 1, "timezone": "Asia/Shanghai", "city": city})


LEVELS = [("building", "b1"), ("park", "p"), ("city", "c")]


@pytest.mark.parametrize(("level", "site_id"), LEVELS)
def test_every_level_bills_the_buildings_own_peak(level: str, site_id: str) -> None:
    """No assets: b1 imports its load, peak 500 kW, billed 40 × 500 = 20,000 CNY at every level
    (before, the park and city plans billed 0: only the park's connection had a demand term)."""
    frame = inputs(3, b1__electricity_kw=B1_KW, b2__electricity_kw=B2_KW)
    result = plan(_site([]), frame, level=level, site_id=site_id)
    assert result.cost_cny["demand"] == pytest.approx(RATE * 500, abs=1e-6)
    assert result.baseline.cost_cny["demand"] == pytest.approx(RATE * 500, abs=1e-9)
    assert result.scalars["b1:peak_import_kw"] == pytest.approx(500.0, abs=1e-6)


@pytest.mark.parametrize(("level", "site_id"), LEVELS)
def test_the_buildings_month_peak_column_is_read_at_every_level(level: str, site_id: str) -> None:
    """`b1:month_peak_kw` 450: the rise 50 kW is billed, 2,000 CNY, by every plan and baseline;
    with b1's battery the plan shaves b1 to 450 (50 kW at step 2, recharged 50/0.9025 kWh at
    step 1) and bills nothing, as the building's own plan does."""
    frame = inputs(3, b1__electricity_kw=B1_KW, b2__electricity_kw=B2_KW, b1__month_peak_kw=450.0)
    bare = plan(_site([]), frame, level=level, site_id=site_id)
    assert bare.cost_cny["demand"] == pytest.approx(RATE * 50, abs=1e-6)
    assert bare.baseline.cost_cny["demand"] == pytest.approx(RATE * 50, abs=1e-9)
    assert bare.month_peak_kw["b1"] == 450.0
    shaved = plan(_site([BATTERY]), frame, level=level, site_id=site_id)
    assert shaved.cost_cny["demand"] == pytest.approx(0.0, abs=1e-6)
    assert shaved.scalars["b1:peak_import_kw"] == pytest.approx(450.0, abs=1e-6)
    b2_energy = 0.0 if level == "building" else PRICE * sum(B2_KW)
    assert shaved.objective_cny == pytest.approx(
        PRICE * (sum(B1_KW) + 50 / 0.9025 - 50) + b2_energy, abs=1e-6
    )
    assert shaved.baseline.total_cny == pytest.approx(
        PRICE * sum(B1_KW) + RATE * 50 + b2_energy, abs=1e-6
    )


def test_the_park_bills_its_own_connection_and_the_buildings_each_on_its_own_peak() -> None:
    """Park connection at 10 CNY/kW on the park's peak (b1 + b2: 400, 600, 500 → 600 kW, 6,000
    CNY) and b1's own at 40 CNY/kW on b1's (500 kW, 20,000 CNY): 26,000 CNY, the plan's and the
    baseline's; energy 0.5 × 1,500 kWh."""
    frame = inputs(3, b1__electricity_kw=B1_KW, b2__electricity_kw=B2_KW)
    result = plan(_site([], park_rate=10.0), frame, level="park", site_id="p")
    assert result.cost_cny["demand"] == pytest.approx(10 * 600 + RATE * 500, abs=1e-6)
    assert result.baseline.cost_cny["demand"] == pytest.approx(10 * 600 + RATE * 500, abs=1e-9)
    assert result.objective_cny == pytest.approx(PRICE * 1500 + 26000, abs=1e-6)


def test_a_decomposed_park_plan_bills_it_too() -> None:
    """By building, coordinated by the park: b1's subproblem and the virtual plan carry its own
    demand charge, so the decomposed plan shaves b1 to its month peak of 450 kW, as the
    centralized one does, and bills what it bills."""
    frame = inputs(3, b1__electricity_kw=B1_KW, b2__electricity_kw=B2_KW, b1__month_peak_kw=450.0)
    site = _site([BATTERY], park_rate=10.0)
    central = plan(site, frame, level="park", site_id="p", method="central")
    decomposed = plan(site, frame, level="park", site_id="p", method="decomposed")
    assert decomposed.method == "decomposed"
    assert central.scalars["b1:peak_import_kw"] == pytest.approx(450.0, abs=1e-6)
    assert decomposed.scalars["b1:peak_import_kw"] == pytest.approx(450.0, abs=1e-4)
    assert decomposed.cost_cny["demand"] == pytest.approx(central.cost_cny["demand"], abs=1e-4)
    assert decomposed.objective_cny == pytest.approx(central.objective_cny, rel=1e-3)
    assert decomposed.lower_bound_cny is not None
    assert decomposed.lower_bound_cny <= central.objective_cny + 1e-6


def test_the_buildings_subproblem_bills_its_own_connection() -> None:
    """The decomposition's subproblem of b1 alone (no price on its feeder yet) costs its own
    demand charge: 40 × (500 − 450) = 2,000 CNY, in the `demand` term with `b1:peak_import`
    rows; b2, on the park's connection alone, has none."""
    site = _site([])
    frame = inputs(3, b1__electricity_kw=B1_KW, b2__electricity_kw=B2_KW, b1__month_peak_kw=450.0)
    table = read_inputs(frame, site.tz)
    found = {r.key: r for r in recipes(resolve_scopes(site, "park", "p"), table, Caps("c", None))}
    costs = {}
    for key, recipe in found.items():
        built, _ = build_building(recipe.scope, recipe.head, recipe.inputs)
        solution = solve(built.problem)
        assert solution.x is not None
        costs[key] = evaluate(built.problem, solution.x, "costs")
    assert costs["b1"]["demand"] == pytest.approx(RATE * 50, abs=1e-6)
    assert "demand" not in costs["b2"]


def test_the_month_peak_option_reaches_the_buildings_own_connection() -> None:
    """--month-peak-kw 450 stands for every connection without a column: the park's (no charge
    here) and b1's, whose rise of 50 kW is billed."""
    frame = inputs(3, b1__electricity_kw=B1_KW, b2__electricity_kw=B2_KW)
    result = plan(_site([]), frame, level="park", site_id="p", month_peak_kw=450.0)
    assert result.month_peak_kw == {"p": 450.0, "b1": 450.0}
    assert result.cost_cny["demand"] == pytest.approx(RATE * 50, abs=1e-6)


def test_a_buildings_month_peak_in_watts_is_judged_by_its_own_limit() -> None:
    """b1's connection takes 2,000 kW: a month peak of 45,000 is above 10 × that (W, not kW),
    though within 10 × the park's 10,000 kW (the limit it was judged by before)."""
    frame = inputs(
        3, b1__electricity_kw=B1_KW, b2__electricity_kw=B2_KW, b1__month_peak_kw=45_000.0
    )
    with pytest.raises(EnergyhubError, match="b1:month_peak_kw"):
        plan(_site([]), frame, level="park", site_id="p")
