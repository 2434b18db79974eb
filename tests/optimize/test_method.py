"""`--method auto` and the city decomposed by park, on heterogeneous parks whose limits bind.

The parks come from the benchmark's generator (bench/parks.py: offices, labs, data centres,
hotels and retail of sizes an order of magnitude apart, connection limit 0.80–0.95 × the net
peak), at hourly steps so that every solve takes well under a second. Each decomposed plan is
checked against an independent centralized solve of the same site, and its coupling rows are
recomputed from the returned schedule.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from energyhub.cli import app
from energyhub.optimize import InfeasiblePlanError, Plan, PlanInputError, plan
from energyhub.optimize import method as methods
from energyhub.optimize.decompose import DecomposeOptions
from energyhub.sites import SiteFile, parse_site
from tests.optimize.cases import to_csv

_spec = importlib.util.spec_from_file_location(
    "bench_parks", Path(__file__).resolve().parents[2] / "bench" / "parks.py"
)
assert _spec is not None and _spec.loader is not None
parks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(parks)
day_index, park, site_of = parks.day_index, parks.park, parks.site_of

TOLERANCE = 0.005
"""Decomposed objective vs the centralized optimum (relative): the issue's target."""

EXACT_KW = 1e-6
"""Coupling rows hold to solver precision."""

OPTIONS = DecomposeOptions(workers=2, max_iterations=60)


def _city(parks: int = 2, per_park: int = 4) -> tuple[SiteFile, pd.DataFrame]:
    site, frame, fractions = site_of(parks, per_park, seed=3, steps=24, event_fraction=0.8)
    assert all(0.8 <= f <= 0.95 + 1e-9 for f in fractions), fractions
    return site, frame


def _event_import(result: Plan, site: SiteFile) -> np.ndarray:
    event = site.city.demand_response[0]
    index = result.schedule.index
    inside = (index >= pd.Timestamp(event.start)) & (index < pd.Timestamp(event.end))
    total = sum(result.schedule[f"{p.id}:import_kw"] for p in site.city.parks)
    return np.asarray(total)[inside]


def _feeds(result: Plan, park_id: str) -> np.ndarray:
    columns = [c for c in result.schedule.columns
               if c.startswith(f"{park_id}-") and c.endswith(":feed_kw")]  # fmt: skip
    return np.asarray(result.schedule[columns].sum(axis=1))


def test_city_decomposed_by_park_holds_every_coupling_row_and_the_central_optimum() -> None:
    site, frame = _city()
    central = plan(site, frame, level="city", site_id="sh", method="central")
    cap = site.city.demand_response[0].import_max_kw
    assert _event_import(central, site).max() == pytest.approx(cap, abs=1e-6)  # the event binds
    found = plan(site, frame, level="city", site_id="sh", method="decomposed", options=OPTIONS)
    assert found.method == "decomposed"
    assert found.method_reason is not None and "by park" in found.method_reason
    assert found.objective_cny >= central.objective_cny - 1e-6
    assert found.objective_cny <= central.objective_cny * (1 + TOLERANCE)
    assert found.lower_bound_cny is not None
    assert found.lower_bound_cny <= central.objective_cny + 1e-6
    assert _event_import(found, site).max() <= cap + EXACT_KW
    for p in site.city.parks:
        imports = np.asarray(found.schedule[f"{p.id}:import_kw"])
        assert imports.max() <= p.grid.import_max_kw + EXACT_KW
        # the park bus: its import (no park assets here) is what its buildings draw
        assert np.abs(imports - _feeds(found, p.id)).max() < 1e-5
        peak = found.scalars[f"{p.id}:peak_import_kw"]
        assert imports.max() == pytest.approx(peak, abs=1e-6)


def test_a_carbon_cap_holds_exactly_across_the_parks() -> None:
    site, frame = _city()
    free = plan(site, frame, level="city", site_id="sh", method="central")
    cap = 0.998 * free.co2_kg
    central = plan(site, frame, level="city", site_id="sh", method="central", carbon_cap_kg=cap)
    found = plan(site, frame, level="city", site_id="sh", method="decomposed",
                 carbon_cap_kg=cap, options=OPTIONS)  # fmt: skip
    assert central.objective_cny > free.objective_cny  # the cap binds
    assert found.co2_kg <= cap + 1e-6
    assert found.objective_cny == pytest.approx(central.objective_cny, rel=TOLERANCE)
    assert found.objective_cny >= central.objective_cny - 1e-6


def test_auto_solves_a_small_park_centrally_and_says_why() -> None:
    site, frame = _city(1, 6)
    result = plan(site, frame, level="park", site_id="p00", method="auto")
    central = plan(site, frame, level="park", site_id="p00", method="central")
    assert result.method == "central"
    steps = 24 * (1 + sum(1 + len(b.assets) for b in site.city.parks[0].buildings))
    assert result.method_reason == (
        f"auto: {steps:,} asset-steps ≤ {methods.PARK_CENTRAL_MAX_ASSET_STEPS:,}, where the "
        "centralized solve still takes seconds (MIP gap ≤ 0.1%)"
    )
    # auto's central solve stops at its own, certified gap (AUTO_MIP_GAP), not HiGHS's 10⁻⁴
    assert result.gap is not None and result.gap <= methods.AUTO_MIP_GAP
    assert result.objective_cny == pytest.approx(central.objective_cny, rel=methods.AUTO_MIP_GAP)


def test_auto_decomposes_by_park_beyond_the_central_size(monkeypatch: pytest.MonkeyPatch) -> None:
    site, frame = _city()
    size = 24 * sum(1 + sum(1 + len(b.assets) for b in p.buildings) for p in site.city.parks)
    monkeypatch.setattr(methods, "CENTRAL_MAX_ASSET_STEPS", size - 1)
    result = plan(site, frame, level="city", site_id="sh", method="auto", options=OPTIONS)
    assert result.method == "decomposed"
    assert result.method_reason is not None
    assert result.method_reason.startswith(f"auto: {size:,} asset-steps > {size - 1:,}")
    assert "by park" in result.method_reason


def test_a_single_park_has_its_own_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """A park has only its buildings to split at, which stays slower than the centralized solve
    well beyond a city's threshold: central up to PARK_CENTRAL_MAX_ASSET_STEPS, then by
    building."""
    site, frame = _city(1, 4)
    size = 24 * (1 + sum(1 + len(b.assets) for b in site.city.parks[0].buildings))
    monkeypatch.setattr(methods, "CENTRAL_MAX_ASSET_STEPS", size - 1)
    result = plan(site, frame, level="park", site_id="p00", method="auto")
    assert result.method == "central"
    assert result.method_reason is not None
    assert result.method_reason.startswith(
        f"auto: {size:,} asset-steps ≤ {methods.PARK_CENTRAL_MAX_ASSET_STEPS:,}"
    )
    monkeypatch.setattr(methods, "PARK_CENTRAL_MAX_ASSET_STEPS", size - 1)
    result = plan(site, frame, level="park", site_id="p00", method="auto", options=OPTIONS)
    assert result.method_reason is not None
    assert result.method_reason.startswith(f"auto: {size:,} asset-steps > {size - 1:,}")
    assert "by building" in result.method_reason


def test_the_cli_defaults_to_auto_and_prints_why(tmp_path: Path) -> None:
    site, frame = _city(1, 3)
    root = tmp_path
    site_path, inputs_path = root / "site.yaml", root / "inputs.csv"
    site_path.write_text(json.dumps(site.model_dump(mode="json", by_alias=True)))
    to_csv(frame, inputs_path)
    result = CliRunner().invoke(app, ["plan", "--site", str(site_path), "--inputs",
                                      str(inputs_path), "--level", "park", "--id", "p00",
                                      "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["method"] == "central"
    assert payload["method_reason"].startswith("auto: ")


def test_an_unknown_method_is_one_line_naming_it() -> None:
    site, frame = _city(1, 2)
    with pytest.raises(
        PlanInputError, match=r"--method: must be auto, central or decomposed; got 'x'"
    ):
        plan(site, frame, level="park", site_id="p00", method="x")


def test_an_infeasible_park_is_named_by_the_decomposition() -> None:
    """p01's limit is far below what its buildings draw at their least."""
    index = day_index(24)
    specs, columns = [], {}
    for i in range(2):
        spec, cols, _ = park(f"p{i:02d}", 3, index, seed=i)
        specs.append(spec)
        columns |= cols
    specs[1]["grid"]["import_max_kw"] *= 0.3
    site = parse_site({"version": 1, "timezone": "Asia/Shanghai",
                       "city": {"id": "sh", "parks": specs}})  # fmt: skip
    frame = pd.DataFrame(columns, index=index)
    with pytest.raises(InfeasiblePlanError) as central:
        plan(site, frame, level="city", site_id="sh", method="central")
    with pytest.raises(InfeasiblePlanError, match=r"^infeasible: park p01: ") as caught:
        plan(site, frame, level="city", site_id="sh", method="decomposed", options=OPTIONS)
    assert caught.value.constraint.startswith("p01")
    assert (caught.value.constraint, caught.value.step) == (
        central.value.constraint,
        central.value.step,
    )


def test_dask_cluster_gives_the_process_pool_city_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    distributed = pytest.importorskip("distributed")
    site, frame = _city()
    pooled = plan(site, frame, level="city", site_id="sh", method="decomposed", options=OPTIONS)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        monkeypatch.setenv("ENERGYHUB_DASK_SCHEDULER", cluster.scheduler_address)
        found = plan(site, frame, level="city", site_id="sh", method="decomposed", options=OPTIONS)
    assert found.objective_cny == pytest.approx(pooled.objective_cny, rel=1e-9)
    assert found.iterations == pooled.iterations
    pd.testing.assert_frame_equal(found.schedule, pooled.schedule, atol=1e-6)


def _park_with_a_chp_building() -> tuple[SiteFile, pd.DataFrame, dict[str, Any]]:
    """Six buildings of all five classes, one hotel with its own CHP (min load, start cost)."""
    index = day_index(24)
    spec, columns, fraction = park("p00", 6, index, seed=5)
    assert 0.8 <= fraction <= 0.95
    assert sum(a["type"] == "chp" for b in spec["buildings"] for a in b["assets"]) == 1
    site = parse_site({"version": 1, "timezone": "Asia/Shanghai",
                       "city": {"id": "sh", "parks": [spec]}})  # fmt: skip
    return site, pd.DataFrame(columns, index=index), spec


def test_a_heterogeneous_park_decomposed_by_building_holds_its_limit_and_the_optimum() -> None:
    site, frame, spec = _park_with_a_chp_building()
    limit = spec["grid"]["import_max_kw"]
    central = plan(site, frame, level="park", site_id="p00", method="central", mip_gap=1e-6)
    assert central.schedule["p00:import_kw"].max() == pytest.approx(limit, abs=1e-6)  # binds
    found = plan(site, frame, level="park", site_id="p00", method="decomposed", options=OPTIONS)
    assert found.method == "decomposed"
    assert found.method_reason == "asked for; by building, coordinated by the park"
    assert found.lower_bound_cny is not None
    assert found.lower_bound_cny <= central.objective_cny + 1e-6
    assert central.objective_cny - 1e-6 <= found.objective_cny
    assert found.objective_cny <= central.objective_cny * (1 + TOLERANCE)
    schedule = found.schedule
    imports = np.asarray(schedule["p00:import_kw"])
    assert imports.max() <= limit + EXACT_KW
    assert np.abs(imports - _feeds(found, "p00")).max() < 1e-5  # the park bus balances
    on = schedule["p00-b000-chp:on"]
    assert set(np.unique(on)) <= {0.0, 1.0}
    fuel = schedule["p00-b000-chp:fuel_kw"]
    chp = next(a for a in spec["buildings"][0]["assets"] if a["type"] == "chp")
    assert (fuel[on == 1.0] >= chp["min_load"] * chp["fuel_max_kw"] - 1e-6).all()
    assert (fuel[on == 0.0] <= 1e-6).all()
    for b in spec["buildings"]:  # each building's heat balance, recomputed from the schedule
        if f"{b['id']}:heat_kw" not in frame:
            continue
        made = sum(
            schedule[c] for c in schedule.columns
            if c.startswith(f"{b['id']}-") and c.endswith(":heat_kw") and "-tes" not in c
        )  # fmt: skip
        stored = 0.0
        if f"{b['id']}-tes:charge_kw" in schedule:
            stored = schedule[f"{b['id']}-tes:charge_kw"] - schedule[f"{b['id']}-tes:discharge_kw"]
        np.testing.assert_allclose(made - stored, frame[f"{b['id']}:heat_kw"], atol=1e-5)


def _clashing_park() -> tuple[SiteFile, pd.DataFrame]:
    """b1's CHP makes electricity cheaper than the grid (1.09 vs 1.5 CNY/kWh) but, at its min
    load, 67.5 kW of heat for a demand of 20: relaxed, its heat store charges and discharges at
    once to waste the rest. b2's battery has nothing to waste."""
    chp = {"id": "b1-chp", "type": "chp", "fuel_max_kw": 300, "eta_el": 0.35, "eta_th": 0.45,
           "min_load": 0.5}  # fmt: skip
    tes = {"id": "b1-tes", "type": "thermal_storage", "carrier": "heat", "energy_kwh": 600,
           "power_kw": 300, "eta_charge": 0.9, "eta_discharge": 0.9}  # fmt: skip
    bess = {"id": "b2-bess", "type": "battery", "energy_kwh": 200, "power_kw": 100}
    park_spec = {
        "id": "p", "gas": {"price_cny_per_nm3": 3.8, "lhv_kwh_per_nm3": 9.97},
        "grid": {"import_max_kw": 1000, "tariff": "flat", "tariff_prices_cny_per_kwh": {"flat": 1.5}},
        "buildings": [
            {"id": "b1", "class": "hotel", "floor_area_m2": 1000, "assets": [chp, tes]},
            {"id": "b2", "class": "office-A", "floor_area_m2": 1000, "assets": [bess]},
        ],
    }  # fmt: skip
    site = parse_site({"version": 1, "timezone": "Asia/Shanghai",
                       "city": {"id": "c", "carbon": {"price_cny_per_t": 0}, "parks": [park_spec]}})  # fmt: skip
    index = pd.date_range("2025-03-03", periods=6, freq="1h", tz="Asia/Shanghai", name="ts")
    frame = pd.DataFrame({"b1:electricity_kw": 200.0, "b1:heat_kw": 20.0,
                          "b2:electricity_kw": 100.0}, index=index)  # fmt: skip
    return site, frame


def test_only_stores_whose_flows_clash_get_binaries_and_the_optimum_stays() -> None:
    site, frame = _clashing_park()
    lazy = plan(site, frame, level="park", site_id="p", method="central", mip_gap=1e-9)
    forced = plan(site, frame, level="park", site_id="p", method="central", mip_gap=1e-9,
                  force_binaries=True)  # fmt: skip
    assert lazy.objective_cny == pytest.approx(forced.objective_cny, rel=1e-9)
    assert (lazy.binaries, forced.binaries) == (2 * 6, 3 * 6)  # CHP on, b1-tes (, b2-bess)
    assert "b1-tes:charging" in lazy.schedule
    assert "b2-bess:charging" not in lazy.schedule
    assert lazy.schedule["b1-chp:on"].sum() > 0  # the CHP runs, so the store was tempted
    schedule = lazy.schedule
    for charge in [c for c in schedule.columns if c.endswith(":charge_kw")]:
        both = np.minimum(schedule[charge], schedule[charge.replace(":charge_kw", ":discharge_kw")])
        assert both.max() <= 1e-6, charge
