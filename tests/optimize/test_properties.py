"""Property tests on random buildings: every plan meets every balance and bound, and adding
every exclusivity binary never changes the optimum the LP/lazy choice finds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from energyhub.optimize import InfeasiblePlanError, Plan, plan
from energyhub.sites import Battery, SiteFile, ThermalStorage
from tests.optimize.cases import building_site, inputs

TOL = 1e-6
MIP_GAP = 1e-9


def _storage(draw: st.DrawFn, asset_id: str, extra: dict[str, Any]) -> dict[str, Any]:
    soc_initial = draw(st.sampled_from([0.2, 0.5, 0.8]))
    return {
        "id": asset_id,
        "energy_kwh": draw(st.sampled_from([50.0, 200.0])),
        "power_kw": draw(st.sampled_from([25.0, 100.0])),
        "eta_charge": draw(st.sampled_from([0.85, 0.95, 1.0])),
        "eta_discharge": draw(st.sampled_from([0.9, 1.0])),
        "soc_min": 0.1,
        "soc_max": 0.9,
        "soc_initial": soc_initial,
        "soc_final": draw(st.sampled_from([None, 0.2, soc_initial, 0.8])),
        **extra,
    }


@st.composite
def cases(draw: st.DrawFn) -> tuple[SiteFile, pd.DataFrame]:
    """A building with a boiler and a chiller and a random subset of the other assets."""
    n = draw(st.integers(3, 7))
    step = draw(st.sampled_from(["1h", "30min"]))
    series = st.lists(st.floats(0, 300), min_size=n, max_size=n)
    assets: list[dict[str, Any]] = [
        {"id": "boiler", "type": "gas_boiler", "heat_max_kw": 400, "eta": 0.9},
        {"id": "chiller", "type": "electric_chiller", "cooling_max_kw": 400, "cop": 4.0},
    ]
    columns: dict[str, Any] = {
        "b1__electricity_kw": draw(series),
        "b1__heat_kw": draw(series),
        "b1__cooling_kw": draw(series),
        "import_price_cny_per_kwh": draw(st.lists(st.floats(-0.2, 1.5), min_size=n, max_size=n)),
    }
    if draw(st.booleans()):
        assets.append({"id": "pv", "type": "pv", "peak_kw": 300})
        columns["pv__available_kw"] = draw(series)
    if draw(st.booleans()):
        assets.append(_storage(draw, "bess", {"type": "battery"}))
    if draw(st.booleans()):
        extra = {"type": "thermal_storage", "carrier": "heat", "loss_per_h": 0.02}
        assets.append(_storage(draw, "tes", extra))
    if draw(st.booleans()):
        assets.append({"id": "hp", "type": "heat_pump", "heat_max_kw": 150, "cop": 3.0})
    if draw(st.booleans()):
        assets.append({"id": "eboiler", "type": "electric_boiler", "heat_max_kw": 100})
    if draw(st.booleans()):
        assets.append(
            {
                "id": "chp",
                "type": "chp",
                "fuel_max_kw": 400,
                "eta_el": 0.35,
                "eta_th": 0.45,
                "min_load": draw(st.sampled_from([0.0, 0.3, 0.6])),
                "start_cost_cny": draw(st.sampled_from([0.0, 30.0])),
            }
        )
    if draw(st.booleans()):
        flex = {"id": "flex", "type": "flexible_load", "power_max_kw": 80, "energy_kwh": 60}
        assets.append(flex | {"window_start_h": 0, "window_end_h": 24})
    grid = {
        "import_max_kw": 3000,
        "export_max_kw": draw(st.sampled_from([0.0, 100.0, 500.0])),
        "export_price_cny_per_kwh": draw(st.sampled_from([0.0, 0.4, 0.9])),
        "demand_charge_cny_per_kw": draw(st.sampled_from([0.0, 5.0])),
    }
    gas = {"price_cny_per_nm3": draw(st.sampled_from([2.5, 4.0])), "lhv_kwh_per_nm3": 10.0}
    carbon = {"price_cny_per_t": draw(st.sampled_from([0.0, 100.0]))}
    site = building_site(assets, grid=grid, gas=gas, carbon=carbon)
    return site, inputs(n, step, **columns)


def _col(schedule: pd.DataFrame, name: str) -> np.ndarray:
    return schedule[name].to_numpy() if name in schedule else np.zeros(len(schedule))


def _check_balances(result: Plan, frame: pd.DataFrame) -> None:
    """Rebuild each balance from the schedule with the sign of each asset's flow."""
    s = result.schedule
    electricity = (
        _col(s, "b1:import_kw")
        - _col(s, "b1:export_kw")
        + _col(s, "pv:output_kw")
        + _col(s, "bess:discharge_kw")
        - _col(s, "bess:charge_kw")
        - _col(s, "hp:electricity_kw")
        - _col(s, "chiller:electricity_kw")
        - _col(s, "eboiler:electricity_kw")
        + _col(s, "chp:electricity_kw")
        - _col(s, "flex:power_kw")
    )
    heat = (
        _col(s, "boiler:heat_kw")
        + _col(s, "hp:heat_kw")
        + _col(s, "eboiler:heat_kw")
        + _col(s, "chp:heat_kw")
        + _col(s, "tes:discharge_kw")
        - _col(s, "tes:charge_kw")
    )
    np.testing.assert_allclose(electricity, frame["b1:electricity_kw"], atol=TOL)
    np.testing.assert_allclose(heat, frame["b1:heat_kw"], atol=TOL)
    np.testing.assert_allclose(_col(s, "chiller:cooling_kw"), frame["b1:cooling_kw"], atol=TOL)


def _check_storage(result: Plan, asset: Battery | ThermalStorage, dt_h: float) -> None:
    s, e = result.schedule, asset.energy_kwh
    soc = s[f"{asset.id}:soc_kwh"].to_numpy()
    assert soc.min() >= asset.soc_min * e - TOL and soc.max() <= asset.soc_max * e + TOL
    keep = (1 - getattr(asset, "loss_per_h", 0.0)) ** dt_h
    previous = np.concatenate([[asset.soc_initial * e], soc[:-1]])
    flow = (
        asset.eta_charge * s[f"{asset.id}:charge_kw"]
        - s[f"{asset.id}:discharge_kw"] / asset.eta_discharge
    )
    np.testing.assert_allclose(soc, keep * previous + flow.to_numpy() * dt_h, atol=TOL)
    if asset.soc_final is not None and asset.soc_final < asset.soc_initial:
        assert soc[-1] >= asset.soc_final * e - TOL  # the rest kept where nothing can use it
    elif asset.soc_final is not None:
        assert soc[-1] == pytest.approx(asset.soc_final * e, abs=TOL)


def _check_bounds(result: Plan, site: SiteFile, frame: pd.DataFrame) -> None:
    s = result.schedule
    flows = s.drop(
        columns=[c for c in s if c.endswith(("feed_kw", ":on", ":charging", ":importing"))]
    )
    assert flows.to_numpy().min() >= -TOL
    assert s["b1:import_kw"].max() <= 3000 + TOL
    if "pv:output_kw" in s:
        assert (s["pv:output_kw"] <= frame["pv:available_kw"] + TOL).all()
    dt_h = (frame.index[1] - frame.index[0]).total_seconds() / 3600
    for asset in site.city.parks[0].buildings[0].assets:
        if isinstance(asset, Battery | ThermalStorage):
            _check_storage(result, asset, dt_h)
        if asset.type == "chp":
            on = s["chp:on"] if "chp:on" in s else np.ones(len(s))
            fuel = s["chp:fuel_kw"]
            assert (fuel >= asset.min_load * 400 * on - TOL).all()
            assert (fuel <= 400 * on + TOL).all()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_plans_meet_balances_and_bounds_and_binaries_never_change_the_optimum(
    case: tuple[SiteFile, pd.DataFrame],
) -> None:
    site, frame = case
    try:
        auto = plan(site, frame, level="building", site_id="b1", mip_gap=MIP_GAP)
    except InfeasiblePlanError:
        with pytest.raises(InfeasiblePlanError):
            plan(site, frame, level="building", site_id="b1", force_binaries=True)
        return
    forced = plan(site, frame, level="building", site_id="b1", force_binaries=True, mip_gap=MIP_GAP)
    assert auto.objective_cny == pytest.approx(forced.objective_cny, rel=1e-6, abs=1e-6)
    assert forced.binaries >= auto.binaries
    for result in (auto, forced):
        _check_balances(result, frame)
        _check_bounds(result, site, frame)
