"""Benchmark energyhub's optimizer against PyPSA (linopy + HiGHS) and EMHASS, in the same run.

(a) a building day, 96 × 15 min, PV + battery + TOU import + flat export: same objective as PyPSA
    and EMHASS, and the time of our whole `plan` call against EMHASS's optimize call and PyPSA's
    `optimize()`; (b) the same with heat (heat pump with a COP series, thermal store, CHP as a
    PyPSA multi-output Link, gas boiler) against PyPSA; (c) a park of 50 buildings (PV, battery,
    heat pump, thermal store each) with a shared CHP under a connection limit: build and solve
    seconds, variables, binaries, and build time against buildings × steps.

Run `bench/setup_optimize_baselines.sh` once, then `.venv/bin/python bench/optimize.py`.
Times are medians of --repeats runs; the machine is shared, so read the ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from energyhub.optimize import plan
from energyhub.optimize.inputs import check_inputs, read_inputs
from energyhub.optimize.levels import build_model
from energyhub.optimize.scope import resolve_scope
from energyhub.optimize.tariffs import TARIFFS
from energyhub.sites import SiteFile, parse_site

HERE = Path(__file__).resolve().parent
TZ = "Asia/Shanghai"
GAS = {"price_cny_per_nm3": 3.8, "lhv_kwh_per_nm3": 9.97}
BATTERY = {"energy_kwh": 1000.0, "power_kw": 500.0, "eta_charge": 0.95, "eta_discharge": 0.95,
           "soc_min": 0.1, "soc_max": 0.9, "soc_initial": 0.5, "soc_final": 0.5}  # fmt: skip
TES = {"energy_kwh": 2000.0, "power_kw": 500.0, "eta_charge": 0.98, "eta_discharge": 0.98,
       "soc_min": 0.0, "soc_max": 1.0, "soc_initial": 0.5, "soc_final": 0.5, "loss_per_h": 0.005}  # fmt: skip
CHP = {
    "fuel_max_kw": 1000.0,
    "eta_el": 0.35,
    "eta_th": 0.45,
    "min_load": 0.4,
    "start_cost_cny": 200.0,
}
BOILER = {"heat_max_kw": 800.0, "eta": 0.92}


def _hours(index: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(index.hour + index.minute / 60.0)


def day(steps: int = 96, start: str = "2025-01-15") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=steps, freq=f"{24 * 60 // 96}min", tz=TZ, name="ts")


def office_kw(index: pd.DatetimeIndex, base: float, peak: float, seed: int) -> np.ndarray:
    hours = _hours(index)
    rng = np.random.default_rng(seed)
    working = np.clip(np.sin((hours - 7) / 12 * np.pi), 0, None)
    return base + peak * working + rng.uniform(0, 0.05 * peak, len(index))


def pv_kw(index: pd.DatetimeIndex, peak: float) -> np.ndarray:
    return peak * 0.6 * np.clip(np.sin((_hours(index) - 6.5) / 11 * np.pi), 0, None)


def case_a(repeats: int) -> dict[str, Any]:
    """The building day as plain numbers, the same for every tool."""
    index = day()
    return {
        "repeats": repeats,
        "step_minutes": 15,
        "load_kw": list(office_kw(index, 250, 350, 1)),
        "pv_peak_kw": 800.0,
        "pv_kw": list(pv_kw(index, 800)),
        "import_price": list(TARIFFS["shanghai-two-part"].prices(index, None)),
        "export_price": 0.25,
        "import_max_kw": 2000.0,
        "export_max_kw": 500.0,
        "battery": BATTERY,
    }


def case_b(repeats: int) -> dict[str, Any]:
    """Case (a) plus heat: demand, COP from outdoor temperature, store, CHP, boiler."""
    case = case_a(repeats)
    index = day()
    outdoor = 4 + 4 * np.sin((_hours(index) - 9) / 24 * 2 * np.pi)
    case["outdoor_c"] = list(outdoor)
    case["heat"] = {
        "demand_kw": list(office_kw(index, 300, 400, 2)),
        "gas_cny_per_kwh": GAS["price_cny_per_nm3"] / GAS["lhv_kwh_per_nm3"],
        "cop": list(2.8 + 0.05 * outdoor),
        "hp_heat_max_kw": 400.0,
        "tes": TES,
        "chp": CHP,
        "boiler": BOILER,
    }
    return case


def our_site(case: dict[str, Any]) -> tuple[SiteFile, pd.DataFrame]:
    """The same case as an energyhub site file and inputs frame."""
    index = day()
    grid = {"import_max_kw": case["import_max_kw"], "export_max_kw": case["export_max_kw"],
            "export_price_cny_per_kwh": case["export_price"]}  # fmt: skip
    assets: list[dict[str, Any]] = [
        {"id": "b01-pv", "type": "pv", "peak_kw": case["pv_peak_kw"]},
        {"id": "b01-bess", "type": "battery", **case["battery"]},
    ]
    columns = {"b01:electricity_kw": case["load_kw"], "b01-pv:available_kw": case["pv_kw"]}
    if "heat" in case:
        assets += [
            {"id": "b01-hp", "type": "heat_pump", "heat_max_kw": case["heat"]["hp_heat_max_kw"],
             "cop_from_outdoor": {"a": 2.8, "b": 0.05}},
            {"id": "b01-tes", "type": "thermal_storage", "carrier": "heat", **TES},
            {"id": "b01-chp", "type": "chp", **CHP},
            {"id": "b01-boiler", "type": "gas_boiler", **BOILER},
        ]  # fmt: skip
        columns |= {"b01:heat_kw": case["heat"]["demand_kw"], "outdoor_c": case["outdoor_c"]}
    building = {"id": "b01", "class": "office-A", "floor_area_m2": 60000, "grid": grid,
                "assets": assets}  # fmt: skip
    park = {"id": "expo", "grid": {"import_max_kw": 20000}, "gas": GAS, "buildings": [building]}
    site = parse_site({"version": 1, "city": {"id": "sh", "carbon": {"price_cny_per_t": 0},
                                              "parks": [park]}})  # fmt: skip
    return site, pd.DataFrame(columns, index=index)


def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], list[Any]]:
    """Wall seconds and result of each of `repeats` calls."""
    times, results = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        results.append(fn())
        times.append(time.perf_counter() - started)
    return times, results


def baseline_tool(venv: str, script: str, case: dict[str, Any]) -> dict[str, Any] | str:
    """Run a tool's side in its own virtualenv; a string says why it could not run."""
    python = HERE / venv / "bin" / "python"
    if not python.exists():
        return f"{venv} missing: run bench/setup_optimize_baselines.sh"
    done = subprocess.run([str(python), str(HERE / script)], input=json.dumps(case),
                          capture_output=True, text=True, check=False, timeout=1800)  # fmt: skip
    if done.returncode != 0:
        return f"{script} failed: {done.stderr.strip().splitlines()[-1:]}"
    result: dict[str, Any] = json.loads(
        done.stdout.strip().splitlines()[-1]
    )  # after solver banners
    return result


def compare(label: str, ours: float, ours_s: float, other: dict[str, Any] | str) -> None:
    if isinstance(other, str):
        print(f"  {label}: not measured ({other})")
        return
    rel = abs(ours - other["objective"]) / max(abs(other["objective"]), 1e-9)
    print(
        f"  {label} {other['version']}: objective {other['objective']:.6f} CNY "
        f"(relative difference {rel:.1e}), {other['seconds'] * 1000:.0f} ms, status {other['status']}; "
        f"ours / {label} time = {ours_s / other['seconds']:.3f}"
    )


def run_building(name: str, case: dict[str, Any], tools: list[tuple[str, str, str]]) -> None:
    site, frame = our_site(case)
    times, results = timed(
        lambda: plan(site, frame, level="building", site_id="b01", mip_gap=1e-9), case["repeats"]
    )
    seconds, result = statistics.median(times), results[-1]
    solve_ms = statistics.median(r.solve_seconds for r in results) * 1000
    print(
        f"({name}) ours: objective {result.objective_cny:.6f} CNY, {seconds * 1000:.0f} ms for the "
        f"whole plan call (solve {solve_ms:.0f} ms), "
        f"{result.variables} variables, {result.binaries} binaries, status {result.status}"
    )
    for label, venv, script in tools:
        compare(label, result.objective_cny, seconds, baseline_tool(venv, script, case))


def park_case(buildings: int, steps: int) -> tuple[SiteFile, pd.DataFrame]:
    """A park of identical-kind buildings (PV, battery, heat pump, store) and a shared CHP."""
    index = pd.date_range("2025-01-15", periods=steps, freq="15min", tz=TZ, name="ts")
    columns: dict[str, Any] = {}
    spec = []
    for b in range(buildings):
        bid = f"b{b:03d}"
        spec.append({"id": bid, "class": "office-B", "floor_area_m2": 20000, "assets": [
            {"id": f"{bid}-pv", "type": "pv", "peak_kw": 200},
            {"id": f"{bid}-bess", "type": "battery", "energy_kwh": 400, "power_kw": 200,
             "soc_initial": 0.5, "soc_final": 0.5},
            {"id": f"{bid}-hp", "type": "heat_pump", "heat_max_kw": 300, "cop": 3.2},
            {"id": f"{bid}-tes", "type": "thermal_storage", "carrier": "heat", "energy_kwh": 800,
             "power_kw": 200, "loss_per_h": 0.005, "soc_initial": 0.5, "soc_final": 0.5},
        ]})  # fmt: skip
        columns[f"{bid}:electricity_kw"] = office_kw(index, 150, 250, b)
        columns[f"{bid}:heat_kw"] = office_kw(index, 100, 150, 1000 + b)
        columns[f"{bid}-pv:available_kw"] = pv_kw(index, 200)
    peak = sum(np.max(v) for k, v in columns.items() if k.endswith("electricity_kw"))
    park = {"id": "park", "grid": {"import_max_kw": round(0.85 * peak), "demand_charge_cny_per_kw": 40},
            "gas": GAS, "assets": [{"id": "park-chp", "type": "chp", "fuel_max_kw": 4000, "eta_el": 0.35,
                                    "eta_th": 0.45, "min_load": 0.4, "start_cost_cny": 200}],
            "buildings": spec}  # fmt: skip
    site = parse_site({"version": 1, "city": {"id": "sh", "parks": [park]}})
    return site, pd.DataFrame(columns, index=index)


def build_seconds(buildings: int, steps: int, repeats: int) -> tuple[float, int]:
    """Fastest of `repeats` builds (the least disturbed by other work on a shared machine)."""
    site, frame = park_case(buildings, steps)

    def build() -> int:
        scope = resolve_scope(site, "park", "park")
        table = read_inputs(frame, site.tz)
        check_inputs(table, site, scope)
        return build_model(scope, table).problem.n_variables

    times, variables = timed(build, repeats)
    return min(times), variables[-1]


def run_park(repeats: int, time_limit_s: float) -> None:
    print(
        "(c) park: build time against buildings × steps (read + check inputs + build, fastest run)"
    )
    rows, times = [], []
    for buildings, steps in [
        (10, 96),
        (25, 96),
        (50, 96),
        (100, 96),
        (50, 384),
        (200, 96),
        (200, 384),
    ]:
        seconds, variables = build_seconds(buildings, steps, repeats)
        rate = seconds / (buildings * steps) * 1e6
        rows.append([1.0, buildings, buildings * steps])
        times.append(seconds)
        print(f"  {buildings:3d} buildings × {steps:3d} steps: {variables:7d} variables, "
              f"build {seconds * 1000:7.1f} ms = {rate:.1f} µs per building-step")  # fmt: skip
    design = np.asarray(rows)
    (fixed, per_building, per_step), *_ = np.linalg.lstsq(design, times, rcond=None)
    worst = np.max(np.abs(design @ [fixed, per_building, per_step] - times) / np.asarray(times))
    print(f"  least squares: build ≈ {fixed * 1e3:.1f} ms + {per_building * 1e3:.3f} ms × buildings "
          f"+ {per_step * 1e6:.3f} µs × building-steps; largest deviation {worst:.0%}")  # fmt: skip
    site, frame = park_case(50, 96)
    started = time.perf_counter()
    result = plan(site, frame, level="park", site_id="park", time_limit_s=time_limit_s)
    total = time.perf_counter() - started
    print(
        f"  50 buildings × 96 steps: build {result.build_seconds:.2f} s, solve {result.solve_seconds:.2f} s "
        f"(whole plan {total:.2f} s), {result.variables} variables, {result.binaries} binaries, "
        f"{result.constraints} rows, status {result.status}, gap {result.gap}, "
        f"objective {result.objective_cny:.2f} CNY vs baseline {result.baseline.total_cny:.2f} CNY"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--time-limit-s", type=float, default=300.0)
    args = parser.parse_args()
    pypsa = ("PyPSA", ".venv-pypsa", "optimize_pypsa.py")
    emhass = ("EMHASS", ".venv-emhass", "optimize_emhass.py")
    run_building("a", case_a(args.repeats), [emhass, pypsa])
    run_building("b", case_b(args.repeats), [pypsa])
    run_park(max(args.repeats, 5), args.time_limit_s)


if __name__ == "__main__":
    main()
