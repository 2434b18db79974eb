"""The rule-based baseline: every demand served by the devices a rule-based operator would run,
and what it cannot serve priced, not free. Figures are worked out by hand in each docstring."""

from __future__ import annotations

from typing import Any

import pytest

from energyhub.optimize.baseline import UNSERVED_CNY_PER_KWH, Baseline, compute_baseline
from energyhub.optimize.inputs import read_inputs
from energyhub.optimize.network import Context
from energyhub.optimize.scope import resolve_scope
from energyhub.sites import SiteFile
from tests.optimize.cases import building_site, inputs

GAS = {"price_cny_per_nm3": 1.0, "lhv_kwh_per_nm3": 10.0}  # 0.1 CNY/kWh
CHP = {"id": "chp", "type": "chp", "fuel_max_kw": 400, "eta_el": 0.35, "eta_th": 0.45}


def baseline(site: SiteFile, **columns: Any) -> Baseline:
    frame = inputs(2, **columns)
    scope = resolve_scope(site, "building", "b1")
    return compute_baseline(Context.bare(scope, read_inputs(frame, site.tz)))


def test_a_chp_serves_heat_heat_led() -> None:
    """Heat 90 kW from a CHP (η_th 0.45): fuel 200 kW, power 70 kW off the 200 kW import.

    Two hours: gas 400 kWh at 0.1 = 40; import 2 · 130 kWh at 0.5 = 130; nothing unserved.
    """
    site = building_site([CHP], gas=GAS)
    found = baseline(site, b1__electricity_kw=200, b1__heat_kw=90)
    assert found.unserved_kwh["heat"] == pytest.approx(0.0, abs=1e-9)
    assert found.cost_cny["gas"] == pytest.approx(40.0)
    assert found.cost_cny["energy"] == pytest.approx(130.0)
    assert found.cost_cny["unserved"] == pytest.approx(0.0, abs=1e-9)
    assert found.peak_import_kw == pytest.approx(130.0)


def test_a_chp_below_its_minimum_load_gives_way_to_a_boiler() -> None:
    """Min load 0.5 (heat 90 kW); heat 60 kW: the CHP is off and the boiler (η 0.9) serves it,
    although the CHP is cheaper per kWh of heat (0.1/0.45 − 0.5·0.35/0.45 ≈ −0.17 vs 0.11)."""
    chp = {**CHP, "min_load": 0.5}
    boiler = {"id": "boiler", "type": "gas_boiler", "heat_max_kw": 100, "eta": 0.9}
    site = building_site([chp, boiler], gas=GAS)
    found = baseline(site, b1__electricity_kw=200, b1__heat_kw=60)
    assert found.cost_cny["gas"] == pytest.approx(2 * 60 / 0.9 * 0.1)
    assert found.cost_cny["energy"] == pytest.approx(2 * 200 * 0.5)


def test_a_chp_alone_runs_at_its_minimum_load() -> None:
    """Min load 0.5 and nothing else to heat: fuel 200 kW (heat 90, 30 of it dumped), power 70."""
    site = building_site([{**CHP, "min_load": 0.5}], gas=GAS)
    found = baseline(site, b1__electricity_kw=200, b1__heat_kw=60)
    assert found.unserved_kwh["heat"] == pytest.approx(0.0, abs=1e-9)
    assert found.cost_cny["gas"] == pytest.approx(2 * 200 * 0.1)
    assert found.cost_cny["energy"] == pytest.approx(2 * 130 * 0.5)


def test_a_boiler_serves_heat_before_anything_is_unserved() -> None:
    """A building with only a gas boiler (η 0.9, 100 kW): heat 90 kW is gas 100 kW at 0.1."""
    site = building_site([{"id": "boiler", "type": "gas_boiler", "heat_max_kw": 100, "eta": 0.9}],
                         gas=GAS)  # fmt: skip
    found = baseline(site, b1__electricity_kw=50, b1__heat_kw=90)
    assert found.unserved_kwh["heat"] == pytest.approx(0.0, abs=1e-9)
    assert found.cost_cny["gas"] == pytest.approx(2 * 100 * 0.1)


def test_unserved_heat_is_priced_and_reported() -> None:
    """A 100 kW heat pump (COP 4) against 150 kW of heat: 50 kW a step unserved, 100 kWh over
    two hours, priced at the heat value of lost load; the pump draws 25 kW."""
    pump = {"id": "hp", "type": "heat_pump", "heat_max_kw": 100, "cop": 4.0}
    found = baseline(building_site([pump]), b1__electricity_kw=100, b1__heat_kw=150)
    assert found.unserved_kwh["heat"] == pytest.approx(100.0)
    assert found.cost_cny["unserved"] == pytest.approx(100.0 * UNSERVED_CNY_PER_KWH["heat"])
    assert found.cost_cny["energy"] == pytest.approx(2 * 125 * 0.5)
    assert found.total_cny == pytest.approx(125.0 + 100.0 * UNSERVED_CNY_PER_KWH["heat"])


def test_import_above_the_connection_limit_is_unserved_electricity() -> None:
    """A 300 kW load under a 250 kW limit: 250 imported, 2 · 50 kWh unserved and priced."""
    site = building_site([], grid={"import_max_kw": 250})
    found = baseline(site, b1__electricity_kw=300)
    assert found.unserved_kwh["electricity"] == pytest.approx(100.0)
    assert found.cost_cny["energy"] == pytest.approx(2 * 250 * 0.5)
    assert found.cost_cny["unserved"] == pytest.approx(100.0 * UNSERVED_CNY_PER_KWH["electricity"])
    assert found.peak_import_kw == pytest.approx(250.0)


BOILER = {"id": "boiler", "type": "gas_boiler", "heat_max_kw": 200, "eta": 0.9}


def test_a_chp_is_turned_down_to_the_export_limit_and_a_boiler_makes_the_rest() -> None:
    """Heat 180 kW, the CHP's full heat (power 140 kW) against a 50 kW load, export limit 0: the
    local controller would hold the connection at 0 export, so the CHP runs at 50 kW (heat
    50 · 0.45/0.35 ≈ 64.3 kW, gas ≈ 142.9 kW) and the boiler makes the other ≈ 115.7 kW of heat
    (gas ≈ 128.6 kW). Two hours at 0.1: gas ≈ 54.3 CNY, nothing imported or exported. Before,
    the CHP ran full and its 90 kW above the limit were dropped: gas 80 CNY."""
    site = building_site([CHP, BOILER], gas=GAS)
    found = baseline(site, b1__electricity_kw=50, b1__heat_kw=180)
    chp_kw = 50.0
    gas_kw = chp_kw / 0.35 + (180.0 - chp_kw * 0.45 / 0.35) / 0.9
    assert found.cost_cny["gas"] == pytest.approx(2 * gas_kw * 0.1)
    assert found.cost_cny["energy"] == pytest.approx(0.0, abs=1e-9)
    assert found.unserved_kwh["heat"] == pytest.approx(0.0, abs=1e-9)


def test_pv_is_curtailed_before_the_chp_is_turned_down() -> None:
    """PV 100 kW and a CHP at 140 kW against a 50 kW load, export limit 60 kW: 190 kW would go
    out; curtailing all the PV leaves 90 kW, 30 above the limit, so the CHP gives up 30 kW
    (110 kW, heat ≈ 141.4 kW; the boiler makes ≈ 38.6 kW)."""
    pv = {"id": "pv", "type": "pv", "peak_kw": 100}
    site = building_site([CHP, BOILER, pv], grid={"export_max_kw": 60}, gas=GAS)
    found = baseline(site, b1__electricity_kw=50, b1__heat_kw=180, pv__available_kw=100)
    chp_kw = 110.0
    gas_kw = chp_kw / 0.35 + (180.0 - chp_kw * 0.45 / 0.35) / 0.9
    assert found.cost_cny["gas"] == pytest.approx(2 * gas_kw * 0.1)


def test_a_chp_turned_down_below_its_minimum_load_stops() -> None:
    """As the first case with min load 0.5 (70 kW of power): 50 kW is below it, so the CHP stops
    and the boiler makes all 180 kW of heat (gas 200 kW)."""
    site = building_site([{**CHP, "min_load": 0.5}, BOILER], gas=GAS)
    found = baseline(site, b1__electricity_kw=50, b1__heat_kw=180)
    assert found.cost_cny["gas"] == pytest.approx(2 * 200 * 0.1)
    assert found.cost_cny["energy"] == pytest.approx(2 * 50 * 0.5)


def test_the_counterfactual_and_the_plans_baseline_share_the_export_rule() -> None:
    """The plan's baseline figure (optimize.plan) and the counterfactual of realized savings
    (plans.realized) are both compute_baseline: a plan's baseline cost carries the turned-down
    CHP too."""
    from energyhub.optimize import plan

    site = building_site([CHP, BOILER], gas=GAS)
    frame = inputs(2, b1__electricity_kw=50, b1__heat_kw=180)
    result = plan(site, frame, level="building", site_id="b1")
    gas_kw = 50.0 / 0.35 + (180.0 - 50.0 * 0.45 / 0.35) / 0.9
    assert result.baseline.cost_cny["gas"] == pytest.approx(2 * gas_kw * 0.1)
