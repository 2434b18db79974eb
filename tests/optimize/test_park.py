"""Park level: buildings fed from the park bus under the connection limit, shared assets."""

from __future__ import annotations

import numpy as np
import pytest

from energyhub.optimize import NoSolutionError, plan
from tests.optimize.cases import building_site, inputs

PARK_STORE = {
    "id": "p-bess",
    "type": "battery",
    "energy_kwh": 400,
    "power_kw": 400,
    "eta_charge": 1.0,
    "eta_discharge": 1.0,
    "soc_min": 0.0,
    "soc_max": 1.0,
    "soc_initial": 0.0,
}


def test_shared_store_keeps_the_park_under_its_connection_limit() -> None:
    """Loads 2×100 then 2×600 kW under a 1000 kW limit: the park store must carry 200 kW.

    Import 200 + 200 (charging), then 1000: energy 0.5 · 1400 = 700.
    """
    site = building_site([], grid={"import_max_kw": 1000}, park_assets=[PARK_STORE], buildings=2)
    frame = inputs(2, b1__electricity_kw=[100, 600], b2__electricity_kw=[100, 600])
    result = plan(site, frame, level="park", site_id="p")
    s = result.schedule
    np.testing.assert_allclose(s["p:import_kw"], [400.0, 1000.0], atol=1e-6)
    np.testing.assert_allclose(s["p-bess:discharge_kw"], [0.0, 200.0], atol=1e-6)
    np.testing.assert_allclose(s["b1:feed_kw"], [100.0, 600.0], atol=1e-6)
    assert result.objective_cny == pytest.approx(700.0, abs=1e-6)


def test_park_chp_heats_buildings_through_the_district_link() -> None:
    """A park CHP (η_th 0.45) heats b1 through `b1:district_heat_kw`; heat 90 kW needs fuel 200."""
    chp = {"id": "p-chp", "type": "chp", "fuel_max_kw": 400, "eta_el": 0.35, "eta_th": 0.45}
    site = building_site(
        [],
        park_assets=[chp],
        gas={"price_cny_per_nm3": 1.0, "lhv_kwh_per_nm3": 10.0},
    )
    frame = inputs(2, b1__electricity_kw=200, b1__heat_kw=90)
    result = plan(site, frame, level="park", site_id="p")
    np.testing.assert_allclose(result.schedule["b1:district_heat_kw"], 90.0, atol=1e-6)
    np.testing.assert_allclose(result.schedule["p-chp:fuel_kw"], 200.0, atol=1e-6)
    # gas 200 kWh/h at 0.1, import (200 − 70) at 0.5, two hours
    assert result.objective_cny == pytest.approx(2 * (20.0 + 65.0), abs=1e-6)
    # the rules run the same CHP heat-led (b1 has no heater of its own): nothing unserved
    assert result.baseline.unserved_kwh["heat"] == pytest.approx(0.0, abs=1e-9)
    assert result.baseline.total_cny == pytest.approx(2 * (20.0 + 65.0), abs=1e-6)


def test_no_schedule_within_the_time_limit_raises() -> None:
    chp = {"id": "chp", "type": "chp", "fuel_max_kw": 400, "eta_el": 0.35, "eta_th": 0.45,
           "min_load": 0.5, "start_cost_cny": 10}  # fmt: skip
    site = building_site([chp], gas={"price_cny_per_nm3": 1.0, "lhv_kwh_per_nm3": 10.0})
    frame = inputs(24, b1__electricity_kw=200, b1__heat_kw=90 * (np.arange(24) % 3 > 0))
    with pytest.raises(NoSolutionError, match="time_limit"):
        plan(site, frame, level="building", site_id="b1", time_limit_s=0.0)
