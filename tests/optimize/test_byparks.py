"""The city decomposed by park, where a park's binaries make it exceed its share of a cap.

Park `pa` has one building with a CHP whose minimum load makes more heat than the building can
use (and no store to waste it in), so with its binary the CHP stays off and the building
imports its whole 30 kW; only the LP relaxation could run the CHP part-way. Given a share of
0 kW of the city's cap in the event's step, `pa` exceeds it by 30 kW; `_repair` must take that
from park `pb`, whose battery can carry its building through the step or not.

Park `pc` has that CHP building beside a building with a battery: its binaries come from a MILP
over the CHP building with the battery building held at the relaxed mix (`fix_near`), and from
the whole MILP where the held building leaves that no schedule.
"""

from __future__ import annotations

import pickle
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pytest

from energyhub.optimize import parkwork
from energyhub.optimize.byparks import _repair, _Runner, cap_vector
from energyhub.optimize.coupling import resolve_caps
from energyhub.optimize.errors import UncombinedError
from energyhub.optimize.inputs import read_inputs
from energyhub.optimize.parkwork import (
    ParkAnswer,
    ParkRecipe,
    _held,
    fix_near,
    fix_park,
    inputs_for,
    mixed_park,
    relaxed_answer,
)
from energyhub.optimize.plan import with_month_peaks
from energyhub.optimize.scope import resolve_scopes
from energyhub.sites import parse_site

TZ = "Asia/Shanghai"
GRID = {"import_max_kw": 1000, "tariff": "flat", "tariff_prices_cny_per_kwh": {"flat": 1.5}}
GAS = {"price_cny_per_nm3": 3.8, "lhv_kwh_per_nm3": 9.97}
CAP_KW = 100.0
EVENT_STEP = 3
LIMITS = (None, 1e-6)


def _runner(battery_kwh: float) -> tuple[_Runner, np.ndarray, ThreadPoolExecutor]:
    """The two parks' runner on an in-process executor, and the cap."""
    chp = {"id": "a1-chp", "type": "chp", "fuel_max_kw": 300, "eta_el": 0.35, "eta_th": 0.45,
           "min_load": 0.5}  # fmt: skip
    boiler = {"id": "a1-boiler", "type": "gas_boiler", "heat_max_kw": 50, "eta": 0.9}
    assets: list[dict[str, Any]] = []
    if battery_kwh:
        assets = [{"id": "b1-bess", "type": "battery", "energy_kwh": battery_kwh,
                   "power_kw": 100}]  # fmt: skip
    index = pd.date_range("2025-03-03", periods=6, freq="1h", tz=TZ, name="ts")
    event = {"start": index[EVENT_STEP].isoformat(), "end": index[EVENT_STEP + 1].isoformat(),
             "import_max_kw": CAP_KW}  # fmt: skip
    parks = [
        {"id": "pa", "gas": GAS, "grid": GRID, "buildings": [
            {"id": "a1", "class": "hotel", "floor_area_m2": 1000, "assets": [chp, boiler]}]},
        {"id": "pb", "grid": GRID, "buildings": [
            {"id": "b1", "class": "office-A", "floor_area_m2": 1000, "assets": assets}]},
    ]  # fmt: skip
    site = parse_site({"version": 1, "timezone": TZ, "city": {
        "id": "c", "carbon": {"price_cny_per_t": 0}, "parks": parks,
        "demand_response": [event]}})  # fmt: skip
    frame = pd.DataFrame({"a1:electricity_kw": 30.0, "a1:heat_kw": 20.0,
                          "b1:electricity_kw": 100.0}, index=index)  # fmt: skip
    scopes = resolve_scopes(site, "city", "c")
    table = with_month_peaks(read_inputs(frame, site.tz), scopes, None)
    caps = resolve_caps(site, "city", "c", table.index, None)
    recipes = [ParkRecipe(s.id, s, inputs_for(table, s), caps) for s in scopes]
    pool = ThreadPoolExecutor(1)
    return _Runner([pool], recipes), cap_vector(caps), pool


@pytest.fixture
def shares() -> dict[str, np.ndarray]:
    """All of the cap to pb, none to pa: what a relaxation running pa's CHP part-way implies."""
    return {"pa": np.array([0.0]), "pb": np.array([CAP_KW])}


def test_the_other_park_gives_up_what_a_binary_park_exceeds(shares: dict[str, Any]) -> None:
    runner, rhs, pool = _runner(battery_kwh=200.0)
    with pool:
        finals = runner.finals(shares, LIMITS, free=True)
        assert finals["pa"].q[0] == pytest.approx(30.0, abs=1e-6)  # its CHP cannot run
        assert finals["pa"].excess[0] == pytest.approx(30.0, abs=1e-6)
        assert finals["pb"].excess.max() <= 1e-6
        again = _repair(runner, finals, shares, rhs, LIMITS, free=True)
    assert set(again) == {"pb"}
    assert again["pb"].excess.max() <= 1e-6
    # pb gives up pa's 30 kW: its battery carries 30 of its 100 kW through the step
    assert again["pb"].q[0] <= CAP_KW - 30.0 + 1e-6
    assert finals["pa"].q[0] + again["pb"].q[0] <= rhs[0] + 1e-6
    schedule = again["pb"].final.schedule
    assert schedule["pb:import_kw"][EVENT_STEP] == pytest.approx(again["pb"].q[0], abs=1e-9)
    assert schedule["b1-bess:discharge_kw"][EVENT_STEP] >= 30.0 * 0.95 - 1e-6
    assert schedule["pb:import_kw"][EVENT_STEP] == pytest.approx(CAP_KW - 30.0, abs=1e-6)
    assert finals["pa"].final.schedule["a1-chp:on"].max() == 0.0  # pa: the CHP stays off


def test_a_cap_no_park_can_make_up_for_raises_uncombined(shares: dict[str, Any]) -> None:
    runner, rhs, pool = _runner(battery_kwh=0.0)
    with pool:
        finals = runner.finals(shares, LIMITS, free=True)
        assert finals["pa"].excess[0] == pytest.approx(30.0, abs=1e-6)
        with pytest.raises(UncombinedError, match="parks pa exceed their shares"):
            _repair(runner, finals, shares, rhs, LIMITS, free=True)


def _one_park(limit_kw: float) -> tuple[ParkRecipe, bytes]:
    """Park `pc`: building c1 with pa's CHP (its binary keeps it off; the relaxation runs it
    part-way), building c2 with a battery and a 100 kW peak in the event's step, the park's
    connection limited to `limit_kw`."""
    chp = {"id": "c1-chp", "type": "chp", "fuel_max_kw": 300, "eta_el": 0.35, "eta_th": 0.45,
           "min_load": 0.5}  # fmt: skip
    boiler = {"id": "c1-boiler", "type": "gas_boiler", "heat_max_kw": 50, "eta": 0.9}
    battery = {"id": "c2-bess", "type": "battery", "energy_kwh": 200, "power_kw": 100}
    index = pd.date_range("2025-03-03", periods=6, freq="1h", tz=TZ, name="ts")
    event = {"start": index[EVENT_STEP].isoformat(), "end": index[EVENT_STEP + 1].isoformat(),
             "import_max_kw": 1000}  # fmt: skip
    park = {"id": "pc", "gas": GAS, "grid": GRID | {"import_max_kw": limit_kw}, "buildings": [
        {"id": "c1", "class": "hotel", "floor_area_m2": 1000, "assets": [chp, boiler]},
        {"id": "c2", "class": "office-A", "floor_area_m2": 1000, "assets": [battery]}]}  # fmt: skip
    site = parse_site({"version": 1, "timezone": TZ, "city": {
        "id": "c", "carbon": {"price_cny_per_t": 0}, "parks": [park],
        "demand_response": [event]}})  # fmt: skip
    c2 = np.full(len(index), 50.0)
    c2[EVENT_STEP] = 100.0
    frame = pd.DataFrame({"c1:electricity_kw": 30.0, "c1:heat_kw": 20.0, "c2:electricity_kw": c2},
                         index=index)  # fmt: skip
    scopes = resolve_scopes(site, "city", "c")
    table = with_month_peaks(read_inputs(frame, site.tz), scopes, None)
    caps = resolve_caps(site, "city", "c", table.index, None)
    recipe = ParkRecipe("pc", scopes[0], inputs_for(table, scopes[0]), caps)
    return recipe, pickle.dumps(recipe)


def test_a_park_s_binaries_come_from_its_buildings_with_binaries_the_others_held() -> None:
    recipe, raw = _one_park(limit_kw=150.0)
    token, price = uuid.uuid4().hex, np.zeros(1)
    relaxed = relaxed_answer(token, raw, price, None)
    assert isinstance(relaxed, ParkAnswer) and relaxed.fixing is None  # the CHP part-way
    model = parkwork._cache[(token, "pc")]
    held, values = _held(recipe.scope, model.built.problem, {
        name: model.xs[0][var.slice] for name, var in model.built.problem.variables.items()})
    owners = {name.rpartition(":")[0] for name, var in model.built.problem.variables.items()
              if np.isin(np.arange(var.start, var.start + var.size), held).any()}  # fmt: skip
    assert owners == {"c2", "c2-bess"}  # its feeder and battery; c1 and the park head free
    assert np.array_equal(values, model.xs[0][held])  # each column at its own relaxed value
    near = fix_near(token, raw, price, LIMITS, [(0, 1.0)])
    whole = fix_park(token, raw, price, LIMITS)
    assert isinstance(near, ParkAnswer) and isinstance(whole, ParkAnswer)
    assert near.fixing == whole.fixing  # the CHP off in every step, as the whole MILP has it
    assert near.value == -np.inf  # a MILP with buildings held proves no bound
    kept = mixed_park(token, raw, [(near.serial, 1.0)])  # kept at home: a schedule to mix
    assert kept is not None
    assert sum(kept.final.costs.values()) == pytest.approx(near.cost, rel=1e-9)
    assert kept.final.schedule["c1-chp:on"].max() == 0.0


def test_a_park_whose_held_buildings_leave_no_schedule_gets_its_whole_milp() -> None:
    # c1 imports 14.4 kW with its CHP part-way, 30 kW without it: at 119.4 kW the event step
    # holds c2's 100 kW only if c2's battery discharges, which its relaxed answer has no cause to
    recipe, raw = _one_park(limit_kw=119.4)
    token, price = uuid.uuid4().hex, np.zeros(1)
    assert isinstance(relaxed_answer(token, raw, price, None), ParkAnswer)
    assert fix_near(token, raw, price, LIMITS, [(0, 1.0)]) is None
    with ThreadPoolExecutor(1) as pool:
        runner = _Runner([pool], [recipe])
        runner.token = token  # the relaxed answer above is kept under this token
        fixings = runner.milps(["pc"], price, LIMITS, {"pc": [(0, 1.0)]})
    fixing = fixings["pc"].fixing
    assert fixing is not None
    assert not np.frombuffer(fixing.values, np.uint8).any()  # the CHP off: whole MILP's answer
