"""Parks of unusual shapes, planned `central`, `decomposed` and `auto` through the entry points
users have: `energyhub.optimize.plan` (what POST /plans solves, `energyhub.api.jobs.solve`) and
the `energyhub plan` command.

Every plan is checked against the site file and its inputs, not against the model that made it:
the connection limits, each node's balance of every carrier recomputed from the schedule with the
site file's efficiencies, every store's SOC dynamics, window and terminal SOC, no negative flow,
the city's demand-response cap; the decomposed and `auto` plans against the centralized optimum
(issue 23: at most 0.5 % above it), and `method_reason` against an independent count of the
model's size.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from energyhub.api.jobs import PlanJob, solve
from energyhub.cli import app
from energyhub.optimize import Plan, PlanError, plan
from energyhub.optimize.decompose import DecomposeOptions
from energyhub.optimize.method import AUTO_MIP_GAP, central_limit
from energyhub.sites import SiteFile, parse_site
from tests.optimize.cases import to_csv

TOLERANCE = 0.005
"""Decomposed objective vs the centralized optimum (relative): issue 23's target."""

AUTO_GAP = 1e-3
"""`auto` solves centrally within this MIP gap (docs/decomposed-plans.md)."""

BALANCE_RELATIVE = 1e-7
"""A recomputed balance, limit or SOC row may be off by this times the largest flow it holds
(at least 1 kW): solver precision, far below any metered quantity."""

OPTIONS = DecomposeOptions(workers=2, max_iterations=60)

HOURS = np.arange(24)
WORKING = np.clip(np.sin((HOURS - 7) / 12 * np.pi), 0, None)
SUN = np.clip(np.sin((HOURS - 6) / 12 * np.pi), 0, None)
FLAT = {"tariff": "flat", "tariff_prices_cny_per_kwh": {"flat": 0.5}}
TOU = {"tariff": "shanghai-two-part", "demand_charge_cny_per_kw": 40}
GAS = {"price_cny_per_nm3": 3.0, "lhv_kwh_per_nm3": 9.97}


@dataclass(frozen=True)
class Shape:
    """A site, its inputs and the plan asked of it."""

    site: SiteFile
    inputs: pd.DataFrame
    level: str = "park"
    site_id: str = "p"


def _site(parks: list[dict[str, Any]], tz: str = "Asia/Shanghai", **city: Any) -> SiteFile:
    body = {"id": "c", "carbon": {"price_cny_per_t": 0}, "parks": parks, **city}
    return parse_site({"version": 1, "timezone": tz, "city": body})


def _day(columns: dict[str, Any], tz: str = "Asia/Shanghai", start: str = "2026-03-02") -> pd.DataFrame:
    index = pd.date_range(pd.Timestamp(start, tz=tz), periods=24, freq="1h", name="ts")
    return pd.DataFrame({k: np.broadcast_to(np.asarray(v, float), 24) for k, v in columns.items()},
                        index=index)  # fmt: skip


def _building(bid: str, *assets: dict[str, Any], **keys: Any) -> dict[str, Any]:
    return {"id": bid, "class": "office-A", "floor_area_m2": 1000, "assets": list(assets), **keys}


def _battery(aid: str, kwh: float, kw: float, **keys: Any) -> dict[str, Any]:
    return {"id": aid, "type": "battery", "energy_kwh": kwh, "power_kw": kw, **keys}


# --- the shapes ------------------------------------------------------------------------------


def one_building() -> Shape:
    """A park of one building whose limit binds: its battery shaves the peak."""
    b = _building("b1", {"id": "b1-pv", "type": "pv", "peak_kw": 100}, _battery("b1-bess", 400, 100))
    park = {"id": "p", "grid": {"import_max_kw": 430, **FLAT, "demand_charge_cny_per_kw": 30},
            "buildings": [b]}  # fmt: skip
    columns = {"b1:electricity_kw": 200 + 280 * WORKING, "b1-pv:available_kw": 90 * SUN}
    return Shape(_site([park]), _day(columns))


def no_assets() -> Shape:
    """Buildings without any asset: the plan is their demand, imported."""
    park = {"id": "p", "grid": {"import_max_kw": 700, **TOU},
            "buildings": [_building(f"b{i}") for i in range(3)]}  # fmt: skip
    columns = {f"b{i}:electricity_kw": 100 + 100 * i * WORKING for i in range(3)}
    return Shape(_site([park]), _day(columns))


def thermal_only() -> Shape:
    """Heat and cooling only: heat pumps, chillers, hot-water and ice stores; no battery or PV;
    one building with no electric load of its own."""
    buildings, columns = [], {}
    for i in range(3):
        buildings.append(_building(
            f"b{i}",
            {"id": f"b{i}-hp", "type": "heat_pump", "heat_max_kw": 400, "cop": 3.5},
            {"id": f"b{i}-ch", "type": "electric_chiller", "cooling_max_kw": 400, "cop": 5.0},
            {"id": f"b{i}-tes", "type": "thermal_storage", "carrier": "heat", "energy_kwh": 500,
             "power_kw": 200, "loss_per_h": 0.01, "eta_charge": 0.95, "soc_final": 0.5},
            {"id": f"b{i}-ice", "type": "thermal_storage", "carrier": "cooling",
             "energy_kwh": 800, "power_kw": 200, "eta_charge": 0.9, "soc_final": 0.5},
        ))  # fmt: skip
        columns[f"b{i}:electricity_kw"] = 0.0 if i == 0 else 40 + 30 * WORKING
        columns[f"b{i}:heat_kw"] = 100 + 100 * WORKING
        columns[f"b{i}:cooling_kw"] = 50 + 200 * WORKING
    park = {"id": "p", "grid": {"import_max_kw": 360, **TOU}, "buildings": buildings}
    return Shape(_site([park]), _day(columns))


def shared_park_assets() -> Shape:
    """Every asset at the park: CHP, battery, electrolyzer, hydrogen store, fuel cell, gas
    boiler; the buildings have none. The park's own heat demand takes the CHP's heat."""
    assets = [
        {"id": "chp", "type": "chp", "fuel_max_kw": 500, "eta_el": 0.35, "eta_th": 0.45,
         "min_load": 0.4, "start_cost_cny": 50},
        _battery("bat", 400, 200, soc_final=0.5),
        {"id": "ely", "type": "electrolyzer", "power_max_kw": 100},
        {"id": "h2", "type": "hydrogen_store", "energy_kwh": 500, "power_kw": 100},
        {"id": "fc", "type": "fuel_cell", "power_max_kw": 80},
        {"id": "boiler", "type": "gas_boiler", "heat_max_kw": 500, "eta": 0.9},
    ]  # fmt: skip
    park = {"id": "p", "grid": {"import_max_kw": 400, **TOU}, "gas": GAS, "assets": assets,
            "buildings": [_building(f"b{i}") for i in range(3)]}  # fmt: skip
    columns: dict[str, Any] = {f"b{i}:electricity_kw": 100 + 100 * WORKING for i in range(3)}
    columns["p:heat_kw"] = 200.0
    return Shape(_site([park]), _day(columns))


def pv_export() -> Shape:
    """PV far above the load at midday, exported up to a limit, the rest curtailed."""
    buildings = [_building(f"b{i}", {"id": f"b{i}-pv", "type": "pv", "peak_kw": 800},
                           _battery(f"b{i}-bess", 200, 100)) for i in range(3)]  # fmt: skip
    grid = {"import_max_kw": 1000, **FLAT, "export_max_kw": 500, "export_price_cny_per_kwh": 0.3}
    columns: dict[str, Any] = {f"b{i}:electricity_kw": 50 + 20 * WORKING for i in range(3)}
    columns |= {f"b{i}-pv:available_kw": 780 * SUN for i in range(3)}
    return Shape(_site([{"id": "p", "grid": grid, "buildings": buildings}]), _day(columns))


def zero_load() -> Shape:
    """Buildings that draw nothing, one with a battery that could only lose energy."""
    buildings = [_building("b0", _battery("b0-bess", 200, 100)), _building("b1")]
    park = {"id": "p", "grid": {"import_max_kw": 100, **TOU}, "buildings": buildings}
    return Shape(_site([park]), _day({"b0:electricity_kw": 0.0, "b1:electricity_kw": 0.0}))


def unlike_sizes() -> Shape:
    """A 1 kW building beside a 50 MW one under one binding limit."""
    tiny = _building("tiny", _battery("tiny-bess", 2, 1))
    huge = _building("huge", {"id": "huge-pv", "type": "pv", "peak_kw": 20000},
                     _battery("huge-bess", 100_000, 20_000, soc_final=0.5))  # fmt: skip
    park = {"id": "p", "grid": {"import_max_kw": 42_000, **TOU}, "buildings": [tiny, huge]}
    columns = {"tiny:electricity_kw": 0.2 + 0.8 * WORKING, "huge:electricity_kw":
               30_000 + 20_000 * WORKING, "huge-pv:available_kw": 18_000 * SUN}  # fmt: skip
    return Shape(_site([park]), _day(columns))


def mixed_city() -> Shape:
    """A city of unlike parks under a demand-response cap: one park only a hydrogen chain beside
    a PV building, one whose connection is effectively unlimited (1 GW), one plain."""
    hydrogen = {"id": "ph", "grid": {"import_max_kw": 400, **TOU}, "assets": [
        {"id": "ely", "type": "electrolyzer", "power_max_kw": 300},
        {"id": "h2", "type": "hydrogen_store", "energy_kwh": 2000, "power_kw": 300,
         "soc_min": 0.0, "soc_initial": 0.0},
        {"id": "fc", "type": "fuel_cell", "power_max_kw": 150},
    ], "buildings": [_building("hb", {"id": "hb-pv", "type": "pv", "peak_kw": 600})]}  # fmt: skip
    unlimited = {"id": "pn", "grid": {"import_max_kw": 1e6, **TOU}, "buildings": [
        _building(f"nb{i}", _battery(f"nb{i}-bess", 300, 100)) for i in range(3)]}  # fmt: skip
    plain = {"id": "pp", "grid": {"import_max_kw": 200, **FLAT}, "buildings": [_building("pb")]}
    event = {"start": "2026-03-02T17:00:00+08:00", "end": "2026-03-02T20:00:00+08:00",
             "import_max_kw": 700}  # fmt: skip
    columns: dict[str, Any] = {"hb:electricity_kw": 100 + 100 * WORKING, "hb-pv:available_kw":
                               550 * SUN, "pb:electricity_kw": 150.0}  # fmt: skip
    columns |= {f"nb{i}:electricity_kw": 100 + 100 * WORKING for i in range(3)}
    site = _site([hydrogen, unlimited, plain], demand_response=[event])
    return Shape(site, _day(columns), "city", "c")


def in_zone(tz: str, start: str) -> Callable[[], Shape]:
    """A battery and a flexible load at 15-minute steps over one local day of `tz`."""

    def shape() -> Shape:
        buildings = [_building(
            f"b{i}", _battery(f"b{i}-bess", 200, 100, soc_final=0.5),
            {"id": f"b{i}-fl", "type": "flexible_load", "power_max_kw": 50, "energy_kwh": 100,
             "window_start_h": 1, "window_end_h": 6},
        ) for i in range(2)]  # fmt: skip
        park = {"id": "p", "grid": {"import_max_kw": 460, **TOU}, "buildings": buildings}
        index = _local_day(tz, start).rename("ts")
        hours = np.asarray(index.hour + index.minute / 60)
        load = 100 + 150 * np.clip(np.sin((hours - 7) / 12 * np.pi), 0, None)
        frame = pd.DataFrame({f"b{i}:electricity_kw": load for i in range(2)}, index=index)
        return Shape(_site([park], tz=tz), frame)

    shape.__name__ = f"in_zone_{tz.replace('/', '_')}_{start}"
    return shape


def overnight_chargers() -> Shape:
    """Chargers whose 22:00–06:00 window crosses midnight, planned from noon, beside a battery
    under a binding limit; the fall-back night in Berlin (a 9-hour window)."""
    buildings = [_building(
        f"b{i}", _battery(f"b{i}-bess", 200, 100, soc_final=0.5),
        {"id": f"b{i}-ev", "type": "flexible_load", "power_max_kw": 60, "energy_kwh": 300,
         "window_start_h": 22, "window_end_h": 6},
    ) for i in range(2)]  # fmt: skip
    park = {"id": "p", "grid": {"import_max_kw": 400, **TOU}, "buildings": buildings}
    start = pd.Timestamp("2026-10-24 12:00", tz="Europe/Berlin")
    index = pd.date_range(start, periods=25 * 4, freq="15min", name="ts")
    hours = np.asarray(index.hour + index.minute / 60)
    load = 100 + 100 * np.clip(np.sin((hours - 7) / 12 * np.pi), 0, None)
    frame = pd.DataFrame({f"b{i}:electricity_kw": load for i in range(2)}, index=index)
    return Shape(_site([park], tz="Europe/Berlin"), frame)


def _local_day(tz: str, start: str) -> pd.DatetimeIndex:
    """The 15-minute steps of one local day (92 on a spring-forward day, 100 on a fall-back)."""
    day = pd.Timestamp(start, tz=tz)
    end = (day.tz_localize(None) + pd.Timedelta(days=1)).tz_localize(tz)
    return pd.date_range(day, end, freq="15min", inclusive="left")


SHAPES = [
    one_building, no_assets, thermal_only, shared_park_assets, pv_export, zero_load,
    unlike_sizes, mixed_city, in_zone("UTC", "2026-03-02"),
    in_zone("America/New_York", "2026-11-01"), in_zone("Asia/Kathmandu", "2026-03-02"),
    in_zone("Europe/Berlin", "2026-03-29"), in_zone("Europe/Berlin", "2026-10-25"),
    overnight_chargers,
]  # fmt: skip


# --- independent checks ----------------------------------------------------------------------


def _col(schedule: pd.DataFrame, name: str) -> np.ndarray:
    return np.asarray(schedule[name], dtype=float) if name in schedule else np.zeros(len(schedule))


def _assert_small(residual: np.ndarray, scale: float, what: str) -> None:
    bound = BALANCE_RELATIVE * max(1.0, scale)
    worst = float(np.max(np.abs(residual), initial=0.0))
    assert worst <= bound, f"{what}: off by {worst:.3g} (allowed {bound:.3g})"


def _cop(asset: Any, frame: pd.DataFrame) -> Any:
    fit = asset.cop_from_outdoor
    return asset.cop if fit is None else fit.a + fit.b * np.asarray(frame["outdoor_c"])


def _asset_flows(s: pd.DataFrame, asset: Any, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """What an asset puts into its node's balances (kW, + into the node), by carrier, from its
    own schedule columns, the site file's efficiencies and the inputs."""

    def c(name: str) -> np.ndarray:
        return _col(s, f"{asset.id}:{name}")

    match asset.type:
        case "pv" | "wind":
            available = np.asarray(frame[f"{asset.id}:available_kw"], dtype=float)
            _assert_small(np.maximum(c("output_kw") - available, 0.0), asset.peak_kw, asset.id)
            return {"electricity": c("output_kw")}
        case "battery" | "hydrogen_store" | "thermal_storage":
            carrier = {"battery": "electricity", "hydrogen_store": "hydrogen"}.get(asset.type)
            return {carrier or asset.carrier: c("discharge_kw") - c("charge_kw")}
        case "heat_pump":
            return {"heat": c("heat_kw"), "electricity": -c("heat_kw") / _cop(asset, frame)}
        case "electric_chiller":
            cooling = c("cooling_kw")
            return {"cooling": cooling, "electricity": -cooling / _cop(asset, frame)}
        case "absorption_chiller":
            return {"cooling": c("cooling_kw"), "heat": -c("cooling_kw") / asset.cop}
        case "gas_boiler":
            return {"heat": c("heat_kw"), "gas": -c("heat_kw") / asset.eta}
        case "electric_boiler":
            return {"heat": c("heat_kw"), "electricity": -c("heat_kw") / asset.eta}
        case "chp":
            fuel = c("fuel_kw")
            return {"electricity": asset.eta_el * fuel, "heat": asset.eta_th * fuel, "gas": -fuel}
        case "flexible_load":
            _assert_window(s, asset)
            return {"electricity": -c("power_kw")}
        case "electrolyzer":
            power = c("electricity_kw")
            return {"electricity": -power, "hydrogen": asset.eta * power}
        case "fuel_cell":  # heat recovered up to eta_th of the hydrogen, the rest rejected
            power = c("electricity_kw")
            hydrogen = power / asset.eta_el
            heat = c("heat_kw")
            slack = BALANCE_RELATIVE * max(1.0, float(np.max(hydrogen, initial=0.0)))
            assert np.all(heat >= -slack) and np.all(heat <= asset.eta_th * hydrogen + slack)
            return {"electricity": power, "hydrogen": -hydrogen, "heat": heat}
    raise AssertionError(f"no check for asset type {asset.type}")


def _assert_window(s: pd.DataFrame, asset: Any) -> None:
    """Nothing drawn outside the local window; each whole window (across midnight too) served."""
    power = _col(s, f"{asset.id}:power_kw")
    local = s.index.tz_convert(s.index.tz)
    hours = np.asarray(local.hour + local.minute / 60)
    inside = asset.inside(hours)
    _assert_small(power[~inside], asset.power_max_kw, f"{asset.id}: outside its window")
    dt_h = (s.index[1] - s.index[0]).total_seconds() / 3600 if len(s) > 1 else 1.0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], inside.astype(int), [0]])))
    for first, end in zip(edges[::2], edges[1::2], strict=True):
        if hours[first] == asset.window_start_h and end < len(s):  # a whole window
            served = power[first:end].sum() * dt_h
            _assert_small(np.array([served - asset.energy_kwh]), asset.energy_kwh, asset.id)


CARRIERS = ("electricity", "heat", "cooling", "gas", "hydrogen")


def check_balances(result: Plan, shape: Shape) -> None:
    """Every node's balance of every carrier, recomputed: what flows in equals its demand."""
    s, frame = result.schedule, shape.inputs
    for park in _parks(result, shape.site):
        nodes = [(park.id, park.assets, None), *((b.id, b.assets, b) for b in park.buildings)]
        links = {carrier: np.zeros(len(s)) for carrier in CARRIERS}
        for node, assets, building in reversed(nodes):  # the buildings first, then the park bus
            flows: dict[str, list[np.ndarray]] = {carrier: [] for carrier in CARRIERS}
            for asset in assets:
                for carrier, flow in _asset_flows(s, asset, frame).items():
                    flows[carrier].append(flow)
            flows["gas"].append(_col(s, f"{node}:gas_kw"))
            if building is not None:
                feeds = {"electricity": _col(s, f"{node}:feed_kw"),
                         "heat": _col(s, f"{node}:district_heat_kw"),
                         "cooling": _col(s, f"{node}:district_cooling_kw")}  # fmt: skip
                for carrier, feed in feeds.items():
                    flows[carrier].append(feed)
                    links[carrier] += feed
            else:
                flows["electricity"].append(_col(s, f"{node}:import_kw"))
                flows["electricity"].append(-_col(s, f"{node}:export_kw"))
                for carrier, drawn in links.items():
                    flows[carrier].append(-drawn)
            for carrier, terms in flows.items():
                demand = _column(frame, f"{node}:{carrier}_kw", len(s))
                scale = max([float(np.abs(t).max(initial=0.0)) for t in terms] + [demand.max()])
                _assert_small(sum(terms) - demand, scale, f"{node}:balance_{carrier}")


def _column(frame: pd.DataFrame, name: str, n: int) -> np.ndarray:
    return np.asarray(frame[name], dtype=float) if name in frame else np.zeros(n)


def _parks(result: Plan, site: SiteFile) -> list[Any]:
    if result.level == "city":
        return list(site.city.parks)
    found = site.find_park(result.site_id)
    assert found is not None
    return [found]


def check_limits(result: Plan, shape: Shape) -> None:
    """The park connections, the buildings' own connections and the city's caps."""
    s = result.schedule
    for park in _parks(result, shape.site):
        grid = park.grid
        imports = _col(s, f"{park.id}:import_kw")
        assert imports.max() <= grid.import_max_kw * (1 + BALANCE_RELATIVE), park.id
        assert _col(s, f"{park.id}:export_kw").max() <= grid.export_max_kw * (1 + BALANCE_RELATIVE)
        peak = result.scalars.get(f"{park.id}:peak_import_kw")
        if grid.demand_charge_cny_per_kw > 0:
            assert peak is not None and peak >= imports.max() - 1e-6 * max(1.0, peak)
        for b in park.buildings:
            if b.grid is not None:
                feed = _col(s, f"{b.id}:feed_kw")
                assert feed.max() <= b.grid.import_max_kw * (1 + BALANCE_RELATIVE)
                assert feed.min() >= -b.grid.export_max_kw * (1 + BALANCE_RELATIVE) - 1e-9
    for event in shape.site.city.demand_response:
        inside = (s.index >= pd.Timestamp(event.start)) & (s.index < pd.Timestamp(event.end))
        total = sum(_col(s, f"{p.id}:import_kw") for p in shape.site.city.parks)
        capped = np.asarray(total)[inside].max(initial=0.0)  # steps that start inside the event
        assert capped <= event.import_max_kw * (1 + BALANCE_RELATIVE)


def check_stores(result: Plan, shape: Shape) -> None:
    """SOC window, dynamics with the site file's efficiencies and losses, and terminal SOC."""
    s = result.schedule
    dt_h = (s.index[1] - s.index[0]).total_seconds() / 3600
    for park in _parks(result, shape.site):
        assets = [*park.assets, *(a for b in park.buildings for a in b.assets)]
        for a in assets:
            if a.type not in ("battery", "thermal_storage", "hydrogen_store"):
                continue
            e = a.energy_kwh
            soc, charge, discharge = (_col(s, f"{a.id}:{v}") for v in
                                      ("soc_kwh", "charge_kw", "discharge_kw"))  # fmt: skip
            keep = (1 - getattr(a, "loss_per_h", 0.0)) ** dt_h
            before = np.concatenate([[a.soc_initial * e], soc[:-1]])
            moved = a.eta_charge * charge * dt_h - discharge * dt_h / a.eta_discharge
            _assert_small(soc - keep * before - moved, e, f"{a.id}:soc_balance")
            assert soc.min() >= a.soc_min * e - 1e-6 * e and soc.max() <= a.soc_max * e * (1 + 1e-9)
            assert max(charge.max(), discharge.max()) <= a.power_kw * (1 + 1e-9)
            if a.soc_final is not None:
                _assert_small(soc[-1:] - a.soc_final * e, e, f"{a.id}:soc_final")


def check_flows(result: Plan) -> None:
    """No flow runs backwards: every kW column but a building's feeder (both ways) is ≥ 0."""
    for name in result.schedule.columns:
        if name.endswith("_kw") and not name.endswith(":feed_kw"):
            values = np.asarray(result.schedule[name], dtype=float)
            assert values.min() >= -1e-6 * max(1.0, float(np.abs(values).max())), name


def check_plan(result: Plan, shape: Shape) -> None:
    """A schedule (a decomposition that stopped at its round limit still returns one, its `gap`
    saying how far from its bound) that holds everything the site file and inputs ask."""
    assert result.status == "optimal" or (
        result.method == "decomposed" and result.status == "iteration_limit"
    ), result.status
    assert len(result.schedule) == len(shape.inputs)
    check_balances(result, shape)
    check_limits(result, shape)
    check_stores(result, shape)
    check_flows(result)


def asset_steps(shape: Shape) -> int:
    """The model's size as docs/decomposed-plans.md counts it: (nodes + assets) × steps."""
    parks = shape.site.city.parks if shape.level == "city" else [shape.site.find_park("p")]
    size = sum(1 + len(p.assets) + sum(1 + len(b.assets) for b in p.buildings)
               for p in parks if p is not None)  # fmt: skip
    return size * len(shape.inputs)


# --- the sweep -------------------------------------------------------------------------------


@pytest.mark.parametrize("make", SHAPES, ids=lambda f: f.__name__)
def test_every_method_plans_the_shape_within_the_gap_and_holds_every_row(
    make: Callable[[], Shape],
) -> None:
    shape = make()
    ask = {"level": shape.level, "site_id": shape.site_id}
    central = plan(shape.site, shape.inputs, method="central", **ask)
    decomposed = plan(shape.site, shape.inputs, method="decomposed", options=OPTIONS, **ask)
    auto = plan(shape.site, shape.inputs, method="auto", options=OPTIONS, **ask)
    for result in (central, decomposed, auto):
        check_plan(result, shape)
    optimum = central.objective_cny
    slack = 1e-6 * max(1.0, abs(optimum))
    assert decomposed.objective_cny <= optimum + TOLERANCE * abs(optimum) + slack
    assert decomposed.objective_cny >= optimum - (central.gap or 0.0) * abs(optimum) - slack
    assert auto.objective_cny <= optimum + AUTO_GAP * abs(optimum) + slack
    assert (central.method, central.method_reason) == ("central", "asked for")
    assert decomposed.method == "decomposed", decomposed.method_reason
    by = "by park" if shape.level == "city" else "by building, coordinated by the park"
    assert decomposed.method_reason is not None and decomposed.method_reason.startswith(
        f"asked for; {by}"
    )
    size, limit = asset_steps(shape), central_limit(shape.level)
    assert size <= limit and auto.method == "central"
    assert auto.method_reason is not None
    assert auto.method_reason.startswith(f"auto: {size:,} asset-steps ≤ {limit:,}")


def _random_building(rng: np.random.Generator, bid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A building of 1 kW to 1 MW with up to five assets drawn from every kind."""
    kw = float(10 ** rng.uniform(0, 3))
    kinds = rng.choice(["pv", "battery", "heat_pump", "electric_chiller", "heat_store",
                        "ice_store", "gas_boiler", "chp", "flexible_load", "electric_boiler"],
                       size=int(rng.integers(0, 6)), replace=False)  # fmt: skip
    made = {
        "pv": {"type": "pv", "peak_kw": 0.5 * kw},
        "battery": {"type": "battery", "energy_kwh": kw, "power_kw": 0.4 * kw, "soc_final": 0.5},
        "heat_pump": {"type": "heat_pump", "heat_max_kw": kw, "cop": 3.2},
        "electric_chiller": {"type": "electric_chiller", "cooling_max_kw": kw, "cop": 4.5},
        "heat_store": {"type": "thermal_storage", "carrier": "heat", "energy_kwh": kw,
                       "power_kw": 0.3 * kw, "eta_charge": 0.95, "soc_final": 0.5},
        "ice_store": {"type": "thermal_storage", "carrier": "cooling", "energy_kwh": kw,
                      "power_kw": 0.3 * kw, "eta_charge": 0.9},
        "gas_boiler": {"type": "gas_boiler", "heat_max_kw": kw, "eta": 0.9},
        "chp": {"type": "chp", "fuel_max_kw": 1.2 * kw, "eta_el": 0.35, "eta_th": 0.45,
                "min_load": 0.4, "start_cost_cny": 30},
        "flexible_load": {"type": "flexible_load", "power_max_kw": 0.2 * kw,
                          "energy_kwh": 0.4 * kw, "window_start_h": 0, "window_end_h": 8},
        "electric_boiler": {"type": "electric_boiler", "heat_max_kw": kw},
    }  # fmt: skip
    assets = [{"id": f"{bid}-{k}", **made[k]} for k in kinds]
    columns: dict[str, Any] = {f"{bid}:electricity_kw": kw * (0.3 + 0.5 * WORKING)}
    if "pv" in kinds:
        columns[f"{bid}-pv:available_kw"] = 0.45 * kw * SUN
    heaters = {"heat_pump", "gas_boiler", "electric_boiler"} & set(kinds)
    if heaters or {"chp", "heat_store"} & set(kinds):
        columns[f"{bid}:heat_kw"] = kw * (0.2 + 0.3 * WORKING) if heaters else 0.0
    if {"electric_chiller", "ice_store"} & set(kinds):
        columns[f"{bid}:cooling_kw"] = kw * (0.1 + 0.3 * WORKING) * ("electric_chiller" in kinds)
    return _building(bid, *assets), columns


def random_park(seed: int, *, chp_beside_stores: bool = False) -> Shape:
    """Two to six random buildings, shared assets or not, export or not, and a connection limit
    0–5 % above the lowest peak any schedule reaches (so it binds). A park CHP comes without
    building heat stores unless asked: that shape has its own tests (below)."""
    rng = np.random.default_rng(seed)
    buildings, columns = [], {}
    for i in range(int(rng.integers(2, 7))):
        building, own = _random_building(rng, f"b{i}")
        buildings.append(building)
        columns |= own
    stores = any(a["type"] == "thermal_storage" for b in buildings for a in b["assets"])
    shared: list[dict[str, Any]] = [_battery("bat", 500, 200)] if rng.random() < 0.4 else []
    if (chp_beside_stores or not stores) and rng.random() < 0.4:
        shared += [{"id": "chp", "type": "chp", "fuel_max_kw": 400, "eta_el": 0.35,
                    "eta_th": 0.45, "min_load": 0.5},
                   {"id": "boiler", "type": "gas_boiler", "heat_max_kw": 300, "eta": 0.9}]
        columns["p:heat_kw"] = 100.0  # fmt: skip
    grid: dict[str, Any] = {"import_max_kw": 1e6, **TOU, "demand_charge_cny_per_kw": 1e4}
    if rng.random() < 0.4:
        grid |= {"export_max_kw": 300, "export_price_cny_per_kwh": float(rng.choice([0.2, 0.8]))}
    park = {"id": "p", "grid": grid, "gas": GAS, "assets": shared, "buildings": buildings}
    frame = _day(columns)
    flattest = plan(_site([park]), frame, level="park", site_id="p").schedule["p:import_kw"].max()
    grid |= {"import_max_kw": max(1.0, float(flattest) * rng.uniform(1.0, 1.05)),
             "demand_charge_cny_per_kw": float(rng.choice([0.0, 40.0]))}  # fmt: skip
    return Shape(_site([park]), frame)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10))
def test_random_parks_decomposed_hold_every_row_within_the_gap(seed: int) -> None:
    """Seeded random parks: the decomposed plan (or its fallback to the centralized solve)
    holds every row and comes within 0.5 % of the optimum, never below it."""
    shape = random_park(seed)
    central = plan(shape.site, shape.inputs, level="park", site_id="p", method="central")
    found = plan(shape.site, shape.inputs, level="park", site_id="p", method="decomposed",
                 options=OPTIONS)  # fmt: skip
    check_plan(central, shape)
    check_plan(found, shape)
    optimum, slack = central.objective_cny, 1e-6 * max(1.0, abs(central.objective_cny))
    assert found.objective_cny <= optimum + TOLERANCE * abs(optimum) + slack
    assert found.objective_cny >= optimum - (central.gap or 0.0) * abs(optimum) - slack
    assert found.method in ("decomposed", "central-fallback")


def test_the_plan_post_plans_solves_is_the_central_optimum_and_holds() -> None:
    """`energyhub.api.jobs.solve`, what POST /plans runs in the background: `auto`, whose
    centralized solve stops at a proven AUTO_MIP_GAP."""
    for make in (one_building, shared_park_assets, unlike_sizes):
        shape = make()
        job = PlanJob(0, "park", "p", shape.inputs, 60.0)
        result = solve(job, shape.site)
        check_plan(result, shape)
        central = plan(shape.site, shape.inputs, level="park", site_id="p", method="central")
        assert result.method_reason.startswith("auto: ")
        assert result.objective_cny >= central.objective_cny * (1 - 1e-6)
        assert result.objective_cny <= central.objective_cny * (1 + AUTO_MIP_GAP)


def test_the_energy_cost_is_what_the_flat_tariff_charges_for_the_schedule() -> None:
    """Independent of the model's cost rows: import × 0.5 − export × 0.3 CNY/kWh, hourly."""
    shape = pv_export()
    for method in ("central", "decomposed", "auto"):
        result = plan(shape.site, shape.inputs, level="park", site_id="p", method=method,
                      options=OPTIONS)  # fmt: skip
        s = result.schedule
        expected = float((0.5 * s["p:import_kw"] - 0.3 * s["p:export_kw"]).sum())
        assert result.cost_cny["energy"] == pytest.approx(expected, rel=1e-9, abs=1e-6)
        assert s["p:export_kw"].max() == pytest.approx(500.0)  # the export limit binds
        assert sum(s[f"b{i}-pv:curtailed_kw"].sum() for i in range(3)) > 1000  # the rest is curtailed


def test_a_flexible_load_gets_its_energy_on_a_daylight_saving_day() -> None:
    """Its window 01:00–06:00 lasts 4 hours on 2026-03-29 and 6 on 2026-10-25 in Berlin: the load
    is served its 100 kWh either way (it was 80 and 120, prorated by the steps' count)."""
    for start in ("2026-03-29", "2026-10-25", "2026-06-01"):
        shape = in_zone("Europe/Berlin", start)()
        result = plan(shape.site, shape.inputs, level="park", site_id="p", method="central")
        for i in range(2):
            assert result.schedule[f"b{i}-fl:power_kw"].sum() * 0.25 == pytest.approx(100.0)


# --- through the command ---------------------------------------------------------------------


def _write(tmp_path: Path, shape: Shape) -> tuple[Path, Path]:
    site_path, inputs_path = tmp_path / "site.yaml", tmp_path / "inputs.csv"
    site_path.write_text(yaml.safe_dump(shape.site.model_dump(mode="json", by_alias=True,
                                                              exclude_none=True)))  # fmt: skip
    to_csv(shape.inputs, inputs_path)
    return site_path, inputs_path


def _cli(*args: str | Path) -> Any:
    return CliRunner().invoke(app, ["plan", *map(str, args)])


@pytest.mark.parametrize("method", ["auto", "decomposed"])
def test_the_command_plans_a_mixed_city_and_says_how(tmp_path: Path, method: str) -> None:
    shape = mixed_city()
    site_path, inputs_path = _write(tmp_path, shape)
    out = tmp_path / "schedule.csv"
    run = _cli("--site", site_path, "--inputs", inputs_path, "--level", "city", "--id", "c",
               "--method", method, "--workers", "2", "--out", out, "--json")  # fmt: skip
    assert run.exit_code == 0, run.output
    payload = json.loads(run.stdout)
    expected = "central" if method == "auto" else "decomposed"
    assert payload["method"] == expected and payload["method_reason"]
    schedule = pd.read_csv(out, index_col="ts")
    total = schedule[["ph:import_kw", "pn:import_kw", "pp:import_kw"]].sum(axis=1)
    assert total.iloc[17:20].max() <= 700 * (1 + BALANCE_RELATIVE)  # the demand-response cap
    assert schedule["ph:import_kw"].max() <= 400 * (1 + BALANCE_RELATIVE)


@pytest.mark.parametrize("method", ["central", "decomposed", "auto"])
def test_an_import_limit_no_schedule_can_keep_is_named(tmp_path: Path, method: str) -> None:
    """The docs promise exit 3 naming the balance, node and step: the limit is named too."""
    park = {"id": "p", "grid": {"import_max_kw": 100, **FLAT}, "buildings": [_building("b0")]}
    shape = Shape(_site([park]), _day({"b0:electricity_kw": 50 + 200 * WORKING}))
    site_path, inputs_path = _write(tmp_path, shape)
    run = _cli("--site", site_path, "--inputs", inputs_path, "--level", "park", "--id", "p",
               "--method", method, "--json")  # fmt: skip
    assert run.exit_code == 3, run.output
    assert "Traceback" not in run.output
    payload = json.loads(run.stdout.splitlines()[0])
    assert payload["status"] == "infeasible"
    assert payload["constraint"] == "p:balance_electricity" and payload["ts"].startswith(
        "2026-03-02T08:00"
    )
    assert "p:import_kw = 100 kW (grid.import_max_kw)" in payload["message"]


@pytest.mark.parametrize("method", ["central", "decomposed"])
def test_a_building_s_own_connection_limit_is_named(tmp_path: Path, method: str) -> None:
    """Decomposed, the building's subproblem is what breaks: it is named, and said once to be
    infeasible."""
    park = {"id": "p", "grid": {"import_max_kw": 1000, **FLAT},
            "buildings": [_building("b0", grid={"import_max_kw": 120}), _building("b1")]}  # fmt: skip
    shape = Shape(_site([park]), _day({"b0:electricity_kw": 50 + 200 * WORKING,
                                       "b1:electricity_kw": 10.0}))  # fmt: skip
    site_path, inputs_path = _write(tmp_path, shape)
    run = _cli("--site", site_path, "--inputs", inputs_path, "--level", "park", "--id", "p",
               "--method", method)  # fmt: skip
    assert run.exit_code == 3
    assert "b0:feed_kw = 120 kW (its own grid.import_max_kw)" in run.output
    assert run.output.count("infeasible") == 1, run.output


def _bad(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    site = {"version": 1, "timezone": "Asia/Shanghai", "city": {"id": "c", "parks": [
        {"id": "p", "grid": {"import_max_kw": 1000, **FLAT}, "buildings": [
            _building("b1", _battery("b1-bess", 100, 50))]}]}}  # fmt: skip
    change(site)
    return site


def _b1(site: dict[str, Any]) -> dict[str, Any]:
    building: dict[str, Any] = site["city"]["parks"][0]["buildings"][0]
    return building


BAD_SITES = {
    "negative capacity": (
        lambda s: _b1(s)["assets"][0].update(energy_kwh=-5),
        "city.parks[0].buildings[0].assets[0].energy_kwh: must be > 0, got -5",
    ),
    "efficiency above 1": (
        lambda s: _b1(s)["assets"][0].update(eta_charge=1.5),
        "city.parks[0].buildings[0].assets[0].eta_charge: must be ≤ 1, got 1.5",
    ),
    "unknown carrier": (
        lambda s: _b1(s)["assets"].append({"id": "t", "type": "thermal_storage",
                                           "carrier": "steam", "energy_kwh": 1, "power_kw": 1}),
        "city.parks[0].buildings[0].assets[1].carrier: must be 'heat' or 'cooling', got 'steam'",
    ),
    "duplicate building id": (
        lambda s: s["city"]["parks"][0]["buildings"].append(_building("b1")),
        "id 'b1' is used by more than one site",
    ),
    "duplicate asset id": (
        lambda s: s["city"]["parks"][0].update(assets=[_battery("b1-bess", 1, 1)]),
        "asset id 'b1-bess' is used more than once",
    ),
    "import limit of 0": (
        lambda s: s["city"]["parks"][0]["grid"].update(import_max_kw=0),
        "city.parks[0].grid.import_max_kw: must be > 0, got 0",
    ),
    "infinite limit": (
        lambda s: s["city"]["parks"][0]["grid"].update(import_max_kw=float("inf")),
        "city.parks[0].grid.import_max_kw: must be a finite number, got inf",
    ),
    "infinite power": (
        lambda s: _b1(s)["assets"][0].update(power_kw=float("inf")),
        "city.parks[0].buildings[0].assets[0].power_kw: must be a finite number, got inf",
    ),
    "capacity beyond any site": (
        lambda s: _b1(s)["assets"][0].update(energy_kwh=1e30),
        "city.parks[0].buildings[0].assets[0].energy_kwh: must be ≤ 1e+09, got 1e+30",
    ),
    "COP fit not a number": (
        lambda s: _b1(s)["assets"].append({"id": "hp", "type": "heat_pump", "heat_max_kw": 1,
                                           "cop_from_outdoor": {"a": float("nan"), "b": 0}}),
        "city.parks[0].buildings[0].assets[1].cop_from_outdoor.a: must be a finite number, got nan",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", BAD_SITES)
def test_a_bad_site_file_is_named_by_field_and_value(tmp_path: Path, name: str) -> None:
    change, expected = BAD_SITES[name]
    site_path = tmp_path / "site.yaml"
    site_path.write_text(yaml.safe_dump(_bad(change)))
    inputs_path = tmp_path / "inputs.csv"
    to_csv(_day({"b1:electricity_kw": 10.0}), inputs_path)
    run = _cli("--site", site_path, "--inputs", inputs_path, "--level", "park", "--id", "p")
    assert run.exit_code == 2, run.output
    assert expected in " ".join(run.output.split()), run.output
    assert "Traceback" not in run.output


def test_the_api_refuses_a_bad_site_file_by_field_and_value_before_it_serves(
    tmp_path: Path,
) -> None:
    """The API plans with the site file it was started with: a bad one stops `energyhub api`
    (exit 2, one line per problem) before it takes a request."""
    site_path = tmp_path / "site.yaml"
    site_path.write_text(yaml.safe_dump(_bad(BAD_SITES["negative capacity"][0])))
    env = {"ENERGYHUB_SITE_FILE": str(site_path), "COLUMNS": "200",
           "ENERGYHUB_DB_URL": "postgresql://nobody@127.0.0.1:1/none"}  # fmt: skip
    run = CliRunner().invoke(app, ["api"], env=env)
    assert run.exit_code == 2, run.output
    assert BAD_SITES["negative capacity"][1] in run.output and "Traceback" not in run.output


def _berlin_site(tmp_path: Path) -> Path:
    park = {"id": "p", "grid": {"import_max_kw": 1000, **FLAT},
            "buildings": [_building("b1", _battery("b1-bess", 100, 50))]}  # fmt: skip
    path = tmp_path / "site.yaml"
    site = _site([park], tz="Europe/Berlin").model_dump(mode="json", by_alias=True)
    path.write_text(yaml.safe_dump(site))
    return path


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        (["2026-03-29 01:45", "2026-03-29 02:00", "2026-03-29 02:15"],
         "ts: row 2 (2026-03-29 02:00:00) does not exist in Europe/Berlin"),
        (["2026-10-25 01:00", "2026-10-25 02:00", "2026-10-25 03:00"],
         "ts: row 2 (2026-10-25 02:00:00) occurs twice in Europe/Berlin"),
        (["2026-03-29 00:00"], "ts: at least two rows are needed"),
        (["1677-09-21T00:00:00+00:00", "1677-09-21T01:00:00+00:00"],
         "ts: row 1 (1677-09-21T00:53:28+00:53:28): must lie between 1970 and 2200"),
        (["2262-04-11T23:00:00+00:00", "2262-04-12T00:00:00+00:00"],
         "ts: row 1 (2262-04-12T01:00:00+02:00): must lie between 1970 and 2200"),
        # the last hour of year 9999 is year 10000 in Berlin: naming it was a traceback
        # (NotImplementedError from Timestamp.isoformat), also when the rows repeat it
        (["9999-12-31T23:00:00+00:00", "9999-12-31T23:30:00+00:00"],
         "ts: row 1 (9999-12-31T23:00:00+00:00): must lie between 1970 and 2200"),
        (["9999-12-31T23:00:00+00:00", "9999-12-31T23:00:00+00:00"],
         "ts: row 1 (9999-12-31T23:00:00+00:00): must lie between 1970 and 2200"),
        (["2026-01-05T00:00:00.5+01:00", "2026-01-05T00:00:01+01:00"],
         "ts: the step is 0.5 s: it must be 1 s to 604800 s"),
        ([], "ts: at least two rows are needed"),
    ],
)  # fmt: skip
def test_times_and_steps_a_plan_cannot_hold_are_bad_input(
    tmp_path: Path, times: list[str], expected: str
) -> None:
    inputs_path = tmp_path / "inputs.csv"
    pd.DataFrame({"ts": times, "b1:electricity_kw": [10.0] * len(times)}).to_csv(
        inputs_path, index=False
    )
    run = _cli("--site", _berlin_site(tmp_path), "--inputs", inputs_path, "--level", "park",
               "--id", "p")  # fmt: skip
    assert run.exit_code == 2, run.output
    assert expected in run.output and "Traceback" not in run.output


def test_a_demand_beyond_any_site_is_bad_input_not_a_solver_error(tmp_path: Path) -> None:
    """10³⁰ kW is a unit mistake: the solver would call the model an error (exit 3 before)."""
    inputs_path = tmp_path / "inputs.csv"
    pd.DataFrame({"ts": ["2026-01-05T00:00:00+01:00", "2026-01-05T01:00:00+01:00"],
                  "b1:electricity_kw": [1e30, 1.0]}).to_csv(inputs_path, index=False)  # fmt: skip
    run = _cli("--site", _berlin_site(tmp_path), "--inputs", inputs_path, "--level", "park",
               "--id", "p")  # fmt: skip
    assert run.exit_code == 2, run.output
    assert "b1:electricity_kw: row 1 (ts 2026-01-05T00:00:00+01:00): 1e+30 is outside" in run.output


def test_local_times_through_the_fall_back_hour_are_placed_by_their_order(tmp_path: Path) -> None:
    """02:00–02:45 twice: the first four rows summer time, the next four winter time."""
    steps = _local_day("Europe/Berlin", "2026-10-25")
    load = np.linspace(10.0, 60.0, len(steps))
    local, aware = tmp_path / "local.csv", tmp_path / "aware.csv"
    naive = steps.tz_localize(None).strftime("%Y-%m-%d %H:%M")
    pd.DataFrame({"ts": naive, "b1:electricity_kw": load}).to_csv(local, index=False)
    pd.DataFrame({"ts": [t.isoformat() for t in steps], "b1:electricity_kw": load}).to_csv(
        aware, index=False
    )
    site = _berlin_site(tmp_path)
    payloads = []
    for path in (local, aware):
        run = _cli("--site", site, "--inputs", path, "--level", "park", "--id", "p", "--json")
        assert run.exit_code == 0, run.output
        payloads.append(json.loads(run.stdout))
    assert payloads[0]["steps"] == payloads[1]["steps"] == 100
    assert payloads[0]["objective_cny"] == pytest.approx(payloads[1]["objective_cny"], rel=1e-12)


def test_decomposing_a_park_without_buildings_is_refused_by_name() -> None:
    """Nothing to split: `--method decomposed` says so (exit 2), `auto` solves it whole."""
    park = {"id": "p", "grid": {"import_max_kw": 500, **FLAT},
            "assets": [_battery("bat", 400, 200)]}  # fmt: skip
    site, frame = _site([park]), _day({"p:electricity_kw": 100 + 100 * WORKING})
    with pytest.raises(PlanError, match="no buildings to decompose"):
        plan(site, frame, level="park", site_id="p", method="decomposed", options=OPTIONS)
    result = plan(site, frame, level="park", site_id="p", method="auto")
    check_plan(result, Shape(site, frame))


def test_a_decomposition_stopped_by_its_time_limit_is_no_schedule_not_infeasible(
    tmp_path: Path,
) -> None:
    """A subproblem stopped by the time limit is no schedule (exit 4), as centrally: nothing in
    the site is infeasible."""
    shape = thermal_only()
    site_path, inputs_path = _write(tmp_path, shape)
    run = _cli("--site", site_path, "--inputs", inputs_path, "--level", "park", "--id", "p",
               "--method", "decomposed", "--time-limit-s", "0.000001", "--json")  # fmt: skip
    assert run.exit_code == 4, run.output
    assert "infeasible" not in run.output and "time_limit" in run.output


def test_a_decomposed_plan_does_not_dump_district_heat_through_a_building_store() -> None:
    """The park's CHP feeds b1 district heat: b1's subproblem gets its store's binaries though
    it has no CHP of its own, so no answer wastes the CHP's surplus by charging and discharging
    at once (it did: 3.7 % below the centralized optimum, physically impossible)."""
    park = {"id": "p", "grid": {"import_max_kw": 400, **TOU}, "gas": GAS,
            "assets": [{"id": "chp", "type": "chp", "fuel_max_kw": 400, "eta_el": 0.35,
                        "eta_th": 0.45, "min_load": 0.5}],
            "buildings": [_building("b1", {"id": "b1-tes", "type": "thermal_storage",
                                           "carrier": "heat", "energy_kwh": 400, "power_kw": 200,
                                           "eta_charge": 0.9}),
                          _building("b2")]}  # fmt: skip
    shape = Shape(_site([park]), _day({"b1:electricity_kw": 200 + 150 * WORKING,
                                       "b1:heat_kw": 60.0, "b2:electricity_kw": 50.0}))  # fmt: skip
    central = plan(shape.site, shape.inputs, level="park", site_id="p", method="central")
    found = plan(shape.site, shape.inputs, level="park", site_id="p", method="decomposed",
                 options=OPTIONS)  # fmt: skip
    s = found.schedule
    assert np.minimum(s["b1-tes:charge_kw"], s["b1-tes:discharge_kw"]).max() <= 1e-6
    assert found.objective_cny >= central.objective_cny * (1 - 1e-6)
    assert found.objective_cny <= central.objective_cny * (1 + TOLERANCE)
    check_plan(found, shape)


@pytest.mark.slow
def test_a_park_chp_beside_building_chps_and_stores_decomposes_within_the_gap() -> None:
    """The decomposition of random_park(3) ends 0.82 % from its bound (its master's mix was
    within the tolerance, the plan its binaries give is not): the model is small, so the plan is
    solved centrally and says why, rather than standing 0.72 % above the optimum as 'optimal'."""
    shape = random_park(3, chp_beside_stores=True)
    central = plan(shape.site, shape.inputs, level="park", site_id="p", method="central")
    found = plan(shape.site, shape.inputs, level="park", site_id="p", method="decomposed",
                 options=OPTIONS)  # fmt: skip
    check_plan(found, shape)
    assert found.objective_cny <= central.objective_cny * (1 + TOLERANCE)
    assert found.method == "central-fallback" and "from its bound" in found.method_reason


@pytest.mark.parametrize(
    ("main_meter", "noted"), [(None, True), ("own-loads", True), (None, False)]
)
def test_a_park_with_its_own_main_meter_without_its_own_load_column_says_so(
    main_meter: str | None, noted: bool
) -> None:
    """Inputs written by hand for a park with a main meter of its own (its connection, or its
    own consumers), without the park's own column: the plan left that load out without a word.
    A park without a main meter of its own (`noted` False below) needs no column."""
    from energyhub.sites import parse_site

    park: dict[str, Any] = {
        "id": "p",
        "grid": {"import_max_kw": 10000, "tariff": "flat",
                 "tariff_prices_cny_per_kwh": {"flat": 0.5}},
        "meters": [{"id": "main", "carrier": "electricity", "quantity": "power_kw"}],
        "buildings": [{"id": "b1", "class": "office-A", "floor_area_m2": 1000, "meters": [
            {"id": "main", "carrier": "electricity", "quantity": "power_kw"}]}],
    }  # fmt: skip
    if main_meter is not None:
        park["main_meter"] = main_meter
    if not noted:
        park["meters"] = []
    site = parse_site({"version": 1, "timezone": "Asia/Shanghai",
                       "city": {"id": "c", "parks": [park]}})  # fmt: skip
    index = pd.date_range("2025-03-03", periods=4, freq="1h", tz="Asia/Shanghai", name="ts")
    frame = pd.DataFrame({"b1:electricity_kw": 100.0}, index=index)
    found = plan(site, frame, level="park", site_id="p")
    said = [n for n in found.notes if "no p:electricity_kw column" in n]
    assert bool(said) is noted, found.notes
    with_column = plan(site, frame.assign(**{"p:electricity_kw": 50.0}), level="park", site_id="p")
    assert not [n for n in with_column.notes if "no p:electricity_kw column" in n]
    assert with_column.objective_cny == pytest.approx(found.objective_cny * 1.5)
