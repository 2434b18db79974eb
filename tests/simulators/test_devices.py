"""Simulated devices: every asset type a plan steers follows its setpoint within its limits and
runs its own rule where none was given."""

from __future__ import annotations

import numpy as np
import pytest

from energyhub.sites import ElectricChiller, Electrolyzer, FlexibleLoad, FuelCell, HeatPump
from simulators.devices import CONTROLLABLE, Balance, Flows, dispatch

HOURS = np.array([2.0, 9.0, 10.0, 19.0])  # valley, peak, peak, peak
NAN = np.nan


def _run(asset: Electrolyzer | FuelCell | FlexibleLoad, setpoint: list[float]) -> np.ndarray:
    zeros = np.zeros(len(HOURS))
    balance = Balance(HOURS, zeros + 20.0, zeros.copy(), zeros.copy())
    flows = {asset.id: Flows.zeros(("electricity", "heat"), len(HOURS))}
    dispatch([asset], flows, balance, slice(None), {asset.id: np.array(setpoint)})
    return flows[asset.id].readings["electricity"]


def test_an_electrolyzer_draws_its_setpoint_clipped_else_its_night_rule() -> None:
    asset = Electrolyzer(id="e", type="electrolyzer", power_max_kw=500, eta=0.65)
    assert _run(asset, [NAN, 200.0, 900.0, -50.0]) == pytest.approx([500.0, 200.0, 500.0, 0.0])


def test_a_fuel_cell_supplies_its_setpoint_clipped_else_its_peak_rule() -> None:
    asset = FuelCell(id="f", type="fuel_cell", power_max_kw=200, eta_el=0.5, eta_th=0.3)
    assert _run(asset, [150.0, NAN, 0.0, 999.0]) == pytest.approx([150.0, 200.0, 0.0, 200.0])


def test_a_flexible_load_draws_its_setpoint_else_spreads_its_energy_over_the_window() -> None:
    asset = FlexibleLoad(
        id="ev", type="flexible_load", power_max_kw=300, energy_kwh=900, window_start_h=9,
        window_end_h=18,
    )  # fmt: skip
    assert _run(asset, [0.0, 300.0, NAN, NAN]) == pytest.approx([0.0, 300.0, 100.0, 0.0])


def test_the_plan_steered_types_are_controllable() -> None:
    assert {"electrolyzer", "fuel_cell", "flexible_load"} <= CONTROLLABLE


def test_an_overnight_flexible_load_spreads_its_energy_across_midnight() -> None:
    asset = FlexibleLoad(
        id="ev", type="flexible_load", power_max_kw=300, energy_kwh=800, window_start_h=18,
        window_end_h=4,
    )  # fmt: skip
    assert _run(asset, [NAN, NAN, NAN, NAN]) == pytest.approx([80.0, 0.0, 0.0, 80.0])


def test_a_heat_pump_and_a_chiller_make_no_more_than_the_demand_left() -> None:
    """Setpoints above a demand that came in under the forecast turn them down (the excess was
    made and thrown away, its electricity metered); below it, they hold the setpoint."""
    hp = HeatPump(id="hp", type="heat_pump", heat_max_kw=400, cop=4.0)
    chiller = ElectricChiller(id="ch", type="electric_chiller", cooling_max_kw=400, cop=5.0)
    zeros = np.zeros(len(HOURS))
    demand = np.array([100.0, 300.0, 500.0, 0.0])
    balance = Balance(HOURS, zeros + 20.0, demand.copy(), demand.copy())
    flows = {a: Flows.zeros(("heat", "cooling", "electricity"), len(HOURS)) for a in ("hp", "ch")}
    sp = np.array([250.0, 200.0, 450.0, NAN])
    dispatch([hp, chiller], flows, balance, slice(None), {"hp": sp, "ch": sp})
    expected = [100.0, 200.0, 400.0, 0.0]
    assert flows["hp"].readings["heat"] == pytest.approx(expected)
    assert flows["hp"].readings["electricity"] == pytest.approx([e / 4 for e in expected])
    assert flows["ch"].readings["cooling"] == pytest.approx(expected)
    assert balance.heat_left == pytest.approx([0.0, 100.0, 100.0, 0.0])
