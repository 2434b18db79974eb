"""Decomposed park and city plans against the centralized solve of the same problem.

Real solves on small parks (3 buildings, a day of hourly steps): the decomposed objective is
within 0.5 % of the centralized optimum, and every coupling constraint holds to solver precision
in the returned schedule: the park balances, the connection limit, the city's demand-response
cap and carbon cap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from energyhub.optimize import InfeasiblePlanError, Plan, plan
from energyhub.optimize.decompose import DecomposeOptions
from tests.optimize.cases import city_site, day_inputs, small_park

TOLERANCE = 0.005
"""Decomposed objective vs the centralized optimum (relative)."""

EXACT_KW = 1e-4
"""Coupling rows must hold to solver precision (a fixed channel may stray 1e-5 kW per building)."""

OPTIONS = DecomposeOptions(workers=2, max_iterations=100)


def _park_balance(schedule: pd.DataFrame, park: str, carrier: str) -> np.ndarray:
    """Supply minus the buildings' draw at a park node (no park demand in these cases)."""
    columns = schedule.columns
    if carrier == "electricity":
        supply = schedule[f"{park}:import_kw"] + schedule.get(f"{park}-chp:electricity_kw", 0.0)
        drawn = schedule[[c for c in columns if c.startswith(park) and c.endswith(":feed_kw")]]
    else:
        supply = schedule[f"{park}-chp:heat_kw"]
        drawn = schedule[[c for c in columns if c.startswith(park) and c.endswith("_heat_kw")
                          and ":district_" in c]]  # fmt: skip
    return np.asarray(supply - drawn.sum(axis=1))


def _assert_park_holds(result: Plan, park: str, import_max_kw: float) -> None:
    schedule = result.schedule
    for carrier in ("electricity", "heat"):
        assert np.abs(_park_balance(schedule, park, carrier)).max() < EXACT_KW, carrier
    assert schedule[f"{park}:import_kw"].max() <= import_max_kw + EXACT_KW
    peak = result.scalars[f"{park}:peak_import_kw"]
    assert schedule[f"{park}:import_kw"].max() == pytest.approx(peak, abs=1e-6)


@pytest.mark.parametrize(
    ("import_max_kw", "demand_charge"),
    [(2000.0, 40.0), (400.0, 2.0)],
    ids=["demand-charge-binds", "connection-limit-binds"],
)
def test_park_decomposed_matches_central_and_holds_the_connection(
    import_max_kw: float, demand_charge: float
) -> None:
    spec, columns = small_park(
        "p", 3, import_max_kw=import_max_kw, demand_charge_cny_per_kw=demand_charge
    )
    site, frame = city_site([spec]), day_inputs(columns)
    central = plan(site, frame, level="park", site_id="p")
    found = plan(site, frame, level="park", site_id="p", method="decomposed", options=OPTIONS)
    assert found.objective_cny == pytest.approx(central.objective_cny, rel=TOLERANCE)
    assert found.objective_cny >= central.objective_cny - 1e-6
    assert found.lower_bound_cny is not None
    assert found.lower_bound_cny <= central.objective_cny + 1e-6
    assert found.gap is not None and found.gap >= 0
    assert (found.method, found.workers) == ("decomposed", 2)
    assert found.iterations is not None and 0 < found.iterations <= OPTIONS.max_iterations
    _assert_park_holds(found, "p", import_max_kw)
    if import_max_kw == 400.0:
        assert central.schedule["p:import_kw"].max() == pytest.approx(400.0, abs=1e-6)


def test_a_chp_with_min_load_in_the_park_head_keeps_the_park_balances_exact() -> None:
    """The head's on/off binaries are fixed from the master's relaxation: the plan still holds
    every park balance exactly and lies between the bound and the centralized optimum's cost."""
    spec, columns = small_park("p", 3, import_max_kw=2000.0)
    spec["assets"][0].update({"min_load": 0.5, "start_cost_cny": 30.0})
    site, frame = city_site([spec]), day_inputs(columns)
    central = plan(site, frame, level="park", site_id="p")
    found = plan(site, frame, level="park", site_id="p", method="decomposed", options=OPTIONS)
    assert found.method == "decomposed"
    assert found.binaries > 0
    _assert_park_holds(found, "p", 2000.0)
    assert set(np.unique(found.schedule["p-chp:on"])) <= {0.0, 1.0}
    fuel = found.schedule["p-chp:fuel_kw"]
    assert (fuel[found.schedule["p-chp:on"] == 1.0] >= 0.5 * 300.0 - 1e-6).all()
    assert found.lower_bound_cny is not None
    assert found.lower_bound_cny <= central.objective_cny + 1e-6 <= found.objective_cny + 2e-6


def _city() -> tuple[object, pd.DataFrame]:
    """Two parks; a demand-response event 13:00–15:00 capping their summed import."""
    north, north_columns = small_park("n", 2, import_max_kw=2000.0, seed=1)
    south, south_columns = small_park("s", 2, import_max_kw=2000.0, chp=False, seed=2)
    event = {"start": "2025-03-03T13:00:00+08:00", "end": "2025-03-03T15:00:00+08:00",
             "import_max_kw": 500.0}  # fmt: skip
    site = city_site([north, south], demand_response=[event])
    return site, day_inputs(north_columns | south_columns)


def test_two_park_city_decomposed_matches_central_under_its_caps() -> None:
    site, frame = _city()
    free = plan(site, frame, level="city", site_id="c", carbon_cap_kg=None)
    event = (free.schedule.index.hour >= 13) & (free.schedule.index.hour < 15)
    summed = free.schedule["n:import_kw"] + free.schedule["s:import_kw"]
    assert summed[event].max() <= 500.0 + EXACT_KW  # the event holds centrally too
    cap = 0.995 * free.co2_kg
    central = plan(site, frame, level="city", site_id="c", carbon_cap_kg=cap)
    found = plan(
        site, frame, level="city", site_id="c", carbon_cap_kg=cap, method="decomposed",
        options=DecomposeOptions(workers=2, max_iterations=300),
    )  # fmt: skip
    assert found.objective_cny == pytest.approx(central.objective_cny, rel=TOLERANCE)
    schedule = found.schedule
    summed = schedule["n:import_kw"] + schedule["s:import_kw"]
    assert summed[event].max() <= 500.0 + EXACT_KW
    assert found.co2_kg <= cap + 1e-6
    _assert_park_holds(found, "n", 2000.0)
    assert np.abs(schedule["s:import_kw"] - schedule.filter(like=":feed_kw").filter(
        regex="^s").sum(axis=1)).max() < EXACT_KW  # fmt: skip


def test_dask_cluster_gives_the_process_pool_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """ENERGYHUB_DASK_SCHEDULER sends the subproblems to a dask.distributed cluster instead."""
    distributed = pytest.importorskip("distributed")
    spec, columns = small_park("p", 3, import_max_kw=400.0, demand_charge_cny_per_kw=2.0)
    site, frame = city_site([spec]), day_inputs(columns)
    options = DecomposeOptions(workers=2, max_iterations=30)
    pooled = plan(site, frame, level="park", site_id="p", method="decomposed", options=options)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        monkeypatch.setenv("ENERGYHUB_DASK_SCHEDULER", cluster.scheduler_address)
        found = plan(site, frame, level="park", site_id="p", method="decomposed", options=options)
    assert found.objective_cny == pytest.approx(pooled.objective_cny, rel=1e-9)
    assert found.iterations == pooled.iterations
    pd.testing.assert_frame_equal(found.schedule, pooled.schedule, atol=1e-6)


@pytest.mark.timeout(60)
def test_an_infeasible_building_is_reported_by_name() -> None:
    """pb2 has a heat demand and, without the park CHP, nothing that makes heat."""
    spec, columns = small_park("p", 3, import_max_kw=2000.0, chp=False)
    spec["buildings"][1]["assets"] = [a for a in spec["buildings"][1]["assets"]
                                      if a["type"] not in ("heat_pump", "thermal_storage")]  # fmt: skip
    site, frame = city_site([spec]), day_inputs(columns)
    with pytest.raises(InfeasiblePlanError, match=r"building pb2") as caught:
        plan(site, frame, level="park", site_id="p", method="decomposed", options=OPTIONS)
    assert caught.value.constraint == "pb2:balance_heat"
    assert caught.value.step == 1


@pytest.mark.timeout(120)
def test_a_coupling_row_no_building_can_meet_is_reported_as_the_central_solve_does() -> None:
    """The connection (300 kW) is below what the buildings draw at their least, from 09:00: the
    master finds no combination, the centralized solve confirms and names balance and step."""
    spec, columns = small_park("p", 3, import_max_kw=300.0, chp=False)
    site, frame = city_site([spec]), day_inputs(columns)
    with pytest.raises(InfeasiblePlanError, match=r"balance_electricity") as central:
        plan(site, frame, level="park", site_id="p")
    options = DecomposeOptions(workers=2, max_iterations=20)
    with pytest.raises(InfeasiblePlanError, match=r"balance_electricity") as found:
        plan(site, frame, level="park", site_id="p", method="decomposed", options=options)
    assert (found.value.constraint, found.value.step) == (
        central.value.constraint,
        central.value.step,
    )
    assert found.value.carrier == "electricity"


def test_a_decomposed_bound_counts_the_month_peak_already_paid_for() -> None:
    """A demand term bills the peak's rise above the month's peak so far, a constant
    (−rate × month peak) the solver's c·x leaves out; the bound left it out too, so with a month
    peak it stood above the plan by 40 CNY/kW × the month peak (here 80 % of the park's peak
    without one: a bound of 21,188 CNY against an optimum of 9,226) and the gap read 0. Now the
    bound is at most the centralized optimum, and each plan's gap is measured against it."""
    spec, columns = small_park("p", 3, import_max_kw=2000.0, demand_charge_cny_per_kw=40.0)
    site, frame = city_site([spec]), day_inputs(columns)
    peak = plan(site, frame, level="park", site_id="p").scalars["p:peak_import_kw"]
    frame["p:month_peak_kw"] = 0.8 * peak
    central = plan(site, frame, level="park", site_id="p")
    found = plan(site, frame, level="park", site_id="p", method="decomposed", options=OPTIONS)
    assert central.cost_cny["demand"] == pytest.approx(
        40.0 * (central.scalars["p:peak_import_kw"] - 0.8 * peak), abs=1e-4
    )
    assert found.lower_bound_cny is not None
    assert found.lower_bound_cny <= central.objective_cny + 1e-6 <= found.objective_cny + 2e-6


def test_a_city_decomposed_by_park_bounds_below_with_month_peaks() -> None:
    """Decomposed by park under the city's event and carbon cap, each park starting from a
    month peak: the parks' answers carry their demand terms' constants, so the bound is at most
    the centralized optimum (it stood 40 × (300 + 200) = 20,000 CNY above it)."""
    site, frame = _city()
    frame["n:month_peak_kw"] = 300.0
    frame["s:month_peak_kw"] = 200.0
    cap = 0.995 * plan(site, frame, level="city", site_id="c").co2_kg
    central = plan(site, frame, level="city", site_id="c", carbon_cap_kg=cap)
    found = plan(
        site, frame, level="city", site_id="c", carbon_cap_kg=cap, method="decomposed",
        options=DecomposeOptions(workers=2, max_iterations=300),
    )  # fmt: skip
    assert found.method == "decomposed"
    assert found.lower_bound_cny is not None
    assert found.lower_bound_cny <= central.objective_cny + 1e-6
    assert found.objective_cny == pytest.approx(central.objective_cny, rel=TOLERANCE)
