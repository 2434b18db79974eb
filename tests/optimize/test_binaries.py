"""Exclusivity binaries only where they can change the optimum, and exclusivity where they can.

The grid gets a binary only in the steps where exporting pays more than importing costs; the
stores the data mark as likely to waste energy (a CHP building's heat store, every battery
under a negative import price) get theirs from the start. Each case is checked against a
binary in every step (`force_binaries`), against its hand-computed optimum where it has one,
and against the relaxation without binaries, which does import and export (or charge and
discharge) at once and costs less: so the binaries do bind.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from energyhub.optimize import Plan, plan
from energyhub.optimize.inputs import read_inputs
from energyhub.optimize.levels import binary_policy, build_model
from energyhub.optimize.model import solve
from energyhub.optimize.network import Binaries, Prices
from energyhub.optimize.scope import resolve_scope
from energyhub.sites import SiteFile
from tests.optimize.cases import building_site, inputs

EXACT = 1e-6

GRID = {"import_max_kw": 100, "export_max_kw": 60}

PRICES = {
    "import_price_cny_per_kwh": [0.5, 0.2, -0.1, 0.5],
    "export_price_cny_per_kwh": [0.3, 0.4, 0.0, 0.3],
}
"""Exporting pays more than importing costs in steps 1 (0.4 > 0.2) and 2 (0 > −0.1) only."""


def _relaxed_objective(site: SiteFile, frame: pd.DataFrame, level: str, site_id: str) -> float:
    """The optimum without any exclusivity binary (with its tie-breaks: 10⁻⁶ CNY per kWh)."""
    scope = resolve_scope(site, level, site_id)
    built = build_model(scope, read_inputs(frame, site.tz), Binaries("off", "off"))
    solution = solve(built.problem, mip_gap=1e-9)
    assert solution.objective is not None
    return solution.objective


def _never_both(result: Plan, a: str, b: str) -> None:
    s = result.schedule
    assert np.minimum(s[a], s[b]).max() <= EXACT, (a, b)


def test_grid_binaries_only_where_export_pays_more_and_exclusivity_holds_there() -> None:
    """10 kW of load, no assets. Importing only: 10 kWh at 0.5, 0.2, −0.1 and 0.5 = 11 CNY.
    Relaxed, steps 1 and 2 would import 70 and export 60 at once: 5 − 10 − 7 + 5 = −7."""
    site = building_site([], grid=GRID)
    frame = inputs(4, b1__electricity_kw=10.0, **PRICES)
    result = plan(site, frame, level="building", site_id="b1", mip_gap=1e-9)
    forced = plan(site, frame, level="building", site_id="b1", mip_gap=1e-9, force_binaries=True)
    assert result.objective_cny == pytest.approx(11.0, abs=1e-6)
    assert forced.objective_cny == pytest.approx(11.0, abs=1e-6)
    assert (result.binaries, forced.binaries) == (2, 4)
    _never_both(result, "b1:import_kw", "b1:export_kw")
    assert _relaxed_objective(site, frame, "building", "b1") == pytest.approx(-7.0, abs=1e-3)
    assert "b1:importing" not in result.scalars


def test_no_grid_binary_where_import_always_costs_at_least_the_export_price() -> None:
    site = building_site([], grid=GRID)
    frame = inputs(4, b1__electricity_kw=10.0, import_price_cny_per_kwh=[0.5, 0.2, 0.3, 0.5],
                   export_price_cny_per_kwh=[0.3, 0.2, 0.0, 0.3])  # fmt: skip
    result = plan(site, frame, level="building", site_id="b1", mip_gap=1e-9)
    assert result.binaries == 0
    assert result.objective_cny == pytest.approx(10 * (0.5 + 0.2 + 0.3 + 0.5), abs=1e-6)
    _never_both(result, "b1:import_kw", "b1:export_kw")


BATTERY = {"id": "b1-bess", "type": "battery", "energy_kwh": 100, "power_kw": 50,
           "eta_charge": 0.9, "eta_discharge": 0.9, "soc_initial": 0.5, "soc_final": 0.5}  # fmt: skip


def test_a_negative_import_price_gives_batteries_their_binaries_from_the_start() -> None:
    """At −0.1 CNY/kWh a relaxed battery charges and discharges at once to burn imports; with
    its binary it cannot, and the optimum equals the one with a binary in every step."""
    site = building_site([BATTERY], grid=GRID)
    frame = inputs(4, b1__electricity_kw=10.0, **PRICES)
    scope = resolve_scope(site, "building", "b1")
    policy = binary_policy(scope, Prices.of(scope, read_inputs(frame, site.tz)))
    assert (policy.storage, policy.grid, policy.stores) == ("lazy", "on", {"b1-bess"})
    result = plan(site, frame, level="building", site_id="b1", mip_gap=1e-9)
    forced = plan(site, frame, level="building", site_id="b1", mip_gap=1e-9, force_binaries=True)
    assert result.objective_cny == pytest.approx(forced.objective_cny, abs=1e-6)
    assert (result.binaries, forced.binaries) == (4 + 2, 4 + 4)
    _never_both(result, "b1-bess:charge_kw", "b1-bess:discharge_kw")
    _never_both(result, "b1:import_kw", "b1:export_kw")
    relaxed = _relaxed_objective(site, frame, "building", "b1")
    assert relaxed < result.objective_cny - 1.0


def test_without_a_reason_to_waste_energy_stores_get_no_binary() -> None:
    site = building_site([BATTERY], grid=GRID)
    frame = inputs(4, b1__electricity_kw=10.0, import_price_cny_per_kwh=[0.5, 0.2, 0.3, 0.9])
    result = plan(site, frame, level="building", site_id="b1", mip_gap=1e-9)
    forced = plan(site, frame, level="building", site_id="b1", mip_gap=1e-9, force_binaries=True)
    assert result.binaries == 0
    assert result.objective_cny == pytest.approx(forced.objective_cny, abs=1e-6)
    _never_both(result, "b1-bess:charge_kw", "b1-bess:discharge_kw")


def test_a_chp_buildings_heat_store_is_clash_prone_and_other_stores_are_not() -> None:
    """b1's CHP at its min load makes more heat than b1 uses: its heat store would waste it
    (binaries from the start); its battery stays lazy and needs none."""
    chp = {"id": "b1-chp", "type": "chp", "fuel_max_kw": 300, "eta_el": 0.35, "eta_th": 0.45,
           "min_load": 0.5}  # fmt: skip
    tes = {"id": "b1-tes", "type": "thermal_storage", "carrier": "heat", "energy_kwh": 600,
           "power_kw": 300, "eta_charge": 0.9, "eta_discharge": 0.9}  # fmt: skip
    site = building_site(
        [chp, tes, BATTERY], buildings=2, grid={"tariff_prices_cny_per_kwh": {"flat": 1.5}},
        gas={"price_cny_per_nm3": 3.8, "lhv_kwh_per_nm3": 9.97},
    )  # fmt: skip
    frame = inputs(6, b1__electricity_kw=200.0, b1__heat_kw=20.0, b2__electricity_kw=100.0)
    scope = resolve_scope(site, "park", "p")
    policy = binary_policy(scope, Prices.of(scope, read_inputs(frame, site.tz)))
    assert (policy.storage, policy.stores) == ("lazy", {"b1-tes"})
    result = plan(site, frame, level="park", site_id="p", mip_gap=1e-9)
    forced = plan(site, frame, level="park", site_id="p", mip_gap=1e-9, force_binaries=True)
    assert result.objective_cny == pytest.approx(forced.objective_cny, rel=1e-9)
    assert result.schedule["b1-chp:on"].sum() > 0
    assert "b1-bess:charging" not in result.schedule
    _never_both(result, "b1-tes:charge_kw", "b1-tes:discharge_kw")
    assert _relaxed_objective(site, frame, "park", "p") < result.objective_cny - 1.0
