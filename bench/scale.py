"""Benchmark the decomposed optimizer at park and city scale against the centralized solve.

(a) A park of 100 buildings (PV + battery + heat pump + thermal store each, a shared CHP with
    min load and start cost, a connection limit that binds and a demand charge): decomposed wall
    time on --workers processes and its objective against the centralized optimum (same run).
(b) A city of 10 parks (the same buildings, a demand-response event capping the city's import):
    decomposed wall time at 100, 300 and 1,000 buildings, per building ÷ workers; the
    centralized time beside it where it finishes within --central-limit-s.

Not a test: the machine is shared, so read the ratios. Run `.venv/bin/python bench/scale.py`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from energyhub.optimize import InfeasiblePlanError, NoSolutionError, Plan, plan
from energyhub.optimize.decompose import DecomposeOptions
from energyhub.sites import SiteFile, parse_site

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bench_optimize", HERE / "optimize.py")
assert _spec is not None and _spec.loader is not None
bench_optimize = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_optimize)

TZ = "Asia/Shanghai"
LIMIT_FRACTION = 0.85
"""Connection limit as a share of the buildings' summed peak demand (as in bench/optimize.py);
the park case then lowers it below the centralized plan's peak so that it binds."""

BINDING_MARGIN_KW = 1.0
"""The park case's limit: the centralized plan's peak import plus this. The demand charge already
flattens that peak to the least the park can reach, so any lower limit is infeasible."""


def park(
    pid: str, buildings: int, index: pd.DatetimeIndex, seed: int, limit_kw: float | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """One park of `buildings` office buildings and a shared CHP, as a site dict and inputs."""
    columns: dict[str, np.ndarray] = {}
    spec = []
    for b in range(buildings):
        bid = f"{pid}-b{b:03d}"
        spec.append({"id": bid, "class": "office-B", "floor_area_m2": 20000, "assets": [
            {"id": f"{bid}-pv", "type": "pv", "peak_kw": 200},
            {"id": f"{bid}-bess", "type": "battery", "energy_kwh": 400, "power_kw": 200,
             "soc_initial": 0.5, "soc_final": 0.5},
            {"id": f"{bid}-hp", "type": "heat_pump", "heat_max_kw": 300, "cop": 3.2},
            {"id": f"{bid}-tes", "type": "thermal_storage", "carrier": "heat", "energy_kwh": 800,
             "power_kw": 200, "loss_per_h": 0.005, "soc_initial": 0.5, "soc_final": 0.5},
        ]})  # fmt: skip
        columns[f"{bid}:electricity_kw"] = bench_optimize.office_kw(index, 150, 250, seed + b)
        columns[f"{bid}:heat_kw"] = bench_optimize.office_kw(index, 100, 150, 10_000 + seed + b)
        columns[f"{bid}-pv:available_kw"] = bench_optimize.pv_kw(index, 200)
    peaks = sum(float(np.max(v)) for k, v in columns.items() if k.endswith("electricity_kw"))
    chp = {"id": f"{pid}-chp", "type": "chp", "fuel_max_kw": 80.0 * buildings, "eta_el": 0.35,
           "eta_th": 0.45, "min_load": 0.4, "start_cost_cny": 200}  # fmt: skip
    limit = limit_kw if limit_kw is not None else round(LIMIT_FRACTION * peaks)
    grid = {"import_max_kw": limit, "demand_charge_cny_per_kw": 40}
    return {"id": pid, "grid": grid, "gas": bench_optimize.GAS, "assets": [chp],
            "buildings": spec}, columns  # fmt: skip


def site_of(
    parks: int, per_park: int, event: bool, limit_kw: float | None = None
) -> tuple[SiteFile, pd.DataFrame]:
    index = pd.date_range("2025-01-15", periods=96, freq="15min", tz=TZ, name="ts")
    specs, columns = [], {}
    for p in range(parks):
        spec, cols = park(f"p{p:02d}", per_park, index, 1000 * p, limit_kw)
        specs.append(spec)
        columns |= cols
    city: dict[str, Any] = {"id": "sh", "parks": specs}
    if event:
        cap = 0.9 * sum(s["grid"]["import_max_kw"] for s in specs)
        city["demand_response"] = [{"start": "2025-01-15T17:00:00+08:00",
                                    "end": "2025-01-15T19:00:00+08:00", "import_max_kw": cap}]  # fmt: skip
    return parse_site({"version": 1, "city": city}), pd.DataFrame(columns, index=index)


def timed(**kwargs: Any) -> tuple[Plan | None, float, str]:
    started = time.perf_counter()
    try:
        result = plan(**kwargs)
    except NoSolutionError as exc:
        return None, time.perf_counter() - started, str(exc)
    return result, time.perf_counter() - started, result.status


def run_park(args: argparse.Namespace) -> None:
    site, frame = site_of(1, args.park_buildings, event=False)
    free, _, status = timed(site=site, inputs=frame, level="park", site_id="p00",
                            time_limit_s=args.central_limit_s, mip_gap=1e-4)  # fmt: skip
    if free is None:
        print(f"(a) the centralized plan without a binding limit found nothing: {status}")
        return
    compare_park(args, site, frame, "limit 0.85 × summed peaks")
    limit = round(float(free.schedule["p00:import_kw"].max()) + BINDING_MARGIN_KW, 1)
    site, frame = site_of(1, args.park_buildings, event=False, limit_kw=limit)
    compare_park(args, site, frame, f"limit {limit} kW = the free plan's peak + 1 kW")


def compare_park(args: argparse.Namespace, site: SiteFile, frame: pd.DataFrame, what: str) -> None:
    options = DecomposeOptions(workers=args.workers, max_iterations=args.iterations)
    print(f"(a) park of {args.park_buildings} buildings, {what}:")
    central, central_s, status = timed(site=site, inputs=frame, level="park", site_id="p00",
                                       time_limit_s=args.central_limit_s, mip_gap=1e-4)  # fmt: skip
    print(f"    centralized: {central_s:.1f} s, status {status}"
          + (f", objective {central.objective_cny:,.0f} CNY" if central else ""))  # fmt: skip
    try:
        found, seconds, _ = timed(site=site, inputs=frame, level="park", site_id="p00",
                                  method="decomposed", options=options)  # fmt: skip
    except InfeasiblePlanError as exc:
        print(f"    decomposed: failed: {exc}")
        return
    assert found is not None
    if found.method != "decomposed":
        print(f"    decomposed: {seconds:.1f} s, found no combination of proposals meeting the "
              f"rows; fell back to the centralized solve ({found.status})")  # fmt: skip
        return
    limit = site.city.parks[0].grid.import_max_kw
    line = (f"    decomposed on {found.workers} workers: {seconds:.1f} s wall, {found.iterations} "
            f"iterations, objective {found.objective_cny:,.0f} CNY, bound "
            f"{found.lower_bound_cny:,.0f} (gap {found.gap:.2%}), status {found.status}; import "
            f"peak {found.schedule['p00:import_kw'].max():.0f} kW of limit {limit:.0f}")  # fmt: skip
    if central is not None:
        diff = (found.objective_cny - central.objective_cny) / central.objective_cny
        line += f"; {diff:+.3%} from the centralized optimum, time ratio {seconds / central_s:.2f}"
    print(line, flush=True)


def run_city(args: argparse.Namespace) -> None:
    print(
        f"(b) city of 10 parks, decomposed on {args.workers} workers, {args.iterations} iterations:"
    )
    for total in args.city_buildings:
        site, frame = site_of(10, total // 10, event=True)
        options = DecomposeOptions(workers=args.workers, max_iterations=args.iterations)
        try:
            found, seconds, _ = timed(site=site, inputs=frame, level="city", site_id="sh",
                                      method="decomposed", options=options)  # fmt: skip
        except InfeasiblePlanError as exc:
            print(f"    {total:5d} buildings: decomposed failed: {exc}", flush=True)
            continue
        assert found is not None
        if found.method != "decomposed":
            print(f"    {total:5d} buildings: {seconds:.1f} s, decomposed fell back to central")
            continue
        per = seconds / total * args.workers * 1000
        line = (f"    {total:5d} buildings: {seconds:7.1f} s wall = {per:.0f} ms per building × worker, "
                f"{found.iterations} iterations, objective {found.objective_cny:,.0f} CNY, "
                f"gap to bound {found.gap:.2%}")  # fmt: skip
        if total <= args.central_up_to:
            central, central_s, status = timed(site=site, inputs=frame, level="city", site_id="sh",
                                               time_limit_s=args.central_limit_s, mip_gap=1e-4)  # fmt: skip
            if central is None:
                line += f"; centralized: nothing within {args.central_limit_s:.0f} s"
            else:
                diff = (found.objective_cny - central.objective_cny) / central.objective_cny
                line += (
                    f"; centralized {central_s:.1f} s ({status}), decomposed {diff:+.3%} from it"
                )
        print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--park-buildings", type=int, default=100)
    parser.add_argument("--city-buildings", type=int, nargs="*", default=[100, 300, 1000])
    parser.add_argument("--central-limit-s", type=float, default=600.0)
    parser.add_argument(
        "--central-up-to",
        type=int,
        default=100,
        help="Solve the city centrally only up to this many buildings.",
    )
    parser.add_argument("--skip-park", action="store_true")
    args = parser.parse_args()
    print("load average (1, 5, 15 min) at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if not args.skip_park:
        run_park(args)
    run_city(args)
    print("load average (1, 5, 15 min) at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
