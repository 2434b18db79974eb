"""Benchmark decomposed plans against the centralized solve on heterogeneous parks.

The parks come from bench/parks.py (offices, labs, data centres, hotels and retail of sizes an
order of magnitude apart, PV, batteries, heat pumps, chillers, heat and ice storage, a few with
their own CHP or gas boiler; each park's connection limit 0.80–0.95 × its net peak), seeded.

(a) Parks of --park-sizes buildings for each of --seeds: the centralized solve (the baseline,
    same run), `--method decomposed` (buildings coordinated by the park) and `--method auto`:
    objective, time, the time ratio to central, gap to central, fallbacks.
(b) The city of 10 parks at --city-buildings buildings, a demand-response event capping the
    city's import 17:00–19:00 at 0.8 × the parks' summed limits: `--method decomposed` (by
    park) time, per building and worker, objective and gap to its bound; the centralized solve
    beside it up to --central-up-to buildings (stopped at --central-limit-s).
(c) With --dask: the same city plans through a dask.distributed LocalCluster of --workers
    processes; the objective must equal the process pool's.

Not a test: the machine is shared, so read the ratios. Run under the benchmark lock:
`flock /tmp/energyhub-bench.lock .venv/bin/python bench/scale.py`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd

from energyhub.optimize import NoSolutionError, Plan, PlanError, plan
from energyhub.optimize.decompose import DecomposeOptions
from energyhub.sites import SiteFile, parse_site

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bench_parks", HERE / "parks.py")
assert _spec is not None and _spec.loader is not None
parks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(parks)

EVENT_FRACTION = 0.8
"""The city's demand-response cap as a share of the parks' summed connection limits."""

MIP_GAP = 1e-4
"""Relative MIP gap of the centralized solve (the decomposition's own default is tighter)."""


def timed(**kwargs: Any) -> tuple[Plan | None, float, str]:
    """A plan and its wall time; None and the reason if it has none."""
    started = time.perf_counter()
    try:
        result = plan(**kwargs)
    except (NoSolutionError, PlanError) as exc:
        return None, time.perf_counter() - started, str(exc).splitlines()[0][:120]
    return result, time.perf_counter() - started, result.status


def one_park(buildings: int, seed: int) -> tuple[SiteFile, pd.DataFrame, float, int]:
    """A heterogeneous park `p00`, its inputs, its limit ÷ net peak and its CHP count."""
    index = parks.day_index()
    spec, columns, fraction = parks.park("p00", buildings, index, seed)
    site = parse_site({"version": 1, "timezone": parks.TZ, "city": {"id": "sh", "parks": [spec]}})
    chps = sum(a["type"] == "chp" for b in spec["buildings"] for a in b["assets"])
    return site, pd.DataFrame(columns, index=index), fraction, chps


def _diff(found: Plan, central: Plan | None) -> str:
    if central is None:
        return "n/a"
    return f"{(found.objective_cny - central.objective_cny) / central.objective_cny:+.3%}"


def run_parks(args: argparse.Namespace) -> None:
    options = DecomposeOptions(workers=args.workers, max_iterations=args.iterations)
    print("(a) heterogeneous parks, connection limit binding")
    print("| buildings | seed | CHPs | limit ÷ net peak | central s | central CNY | method | "
          "method s | ÷ central | CNY | vs central | fallback |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for buildings in args.park_sizes:
        for seed in args.seeds:
            site, frame, fraction, chps = one_park(buildings, seed)
            common = {"site": site, "inputs": frame, "level": "park", "site_id": "p00"}
            central, central_s, status = timed(**common, method="central", mip_gap=MIP_GAP,
                                               time_limit_s=args.central_limit_s)  # fmt: skip
            head = (f"| {buildings} | {seed} | {chps} | {fraction:.3f} | {central_s:.1f} | "
                    + (f"{central.objective_cny:,.2f}" if central else status) + " |")  # fmt: skip
            for method in ("decomposed", "auto"):
                found, seconds, status = timed(**common, method=method, options=options)
                if found is None:
                    print(f"{head} {method} | {seconds:.1f} | | {status} | | |", flush=True)
                    continue
                fallback = "yes" if found.method == "central-fallback" else "no"
                print(f"{head} {method} → {found.method} | {seconds:.1f} | "
                      f"{seconds / central_s:.2f} | {found.objective_cny:,.2f} | "
                      f"{_diff(found, central)} | {fallback} |", flush=True)  # fmt: skip


def city(total: int, seed: int) -> tuple[SiteFile, pd.DataFrame]:
    site, frame, _ = parks.site_of(10, total // 10, seed=seed, event_fraction=EVENT_FRACTION)
    return site, frame


def run_city(args: argparse.Namespace) -> None:
    options = DecomposeOptions(workers=args.workers, max_iterations=args.iterations)
    print(f"(b) city of 10 parks, demand-response cap {EVENT_FRACTION} × Σ limits, "
          f"decomposed on {args.workers} workers")  # fmt: skip
    print("| buildings | decomposed s | ms per building × worker | rounds | CNY | gap to bound "
          "| central s | vs central | fallback |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for total in args.city_buildings:
        site, frame = city(total, args.seeds[0])
        common = {"site": site, "inputs": frame, "level": "city", "site_id": "sh"}
        found, seconds, status = timed(**common, method="decomposed", options=options)
        if found is None:
            print(f"| {total} | {seconds:.1f} | | | {status} | | | | |", flush=True)
            continue
        per = seconds / total * args.workers * 1000
        line = (f"| {total} | {seconds:.1f} | {per:.0f} | {found.iterations} | "
                f"{found.objective_cny:,.2f} | {found.gap:.3%} |")  # fmt: skip
        fallback = "yes" if found.method == "central-fallback" else "no"
        if total <= args.central_up_to:
            central, central_s, status = timed(**common, method="central", mip_gap=MIP_GAP,
                                               time_limit_s=args.central_limit_s)  # fmt: skip
            shown = f"{central_s:.1f}" + ("" if central else f" ({status})")
            line += f" {shown} | {_diff(found, central)} | {fallback} |"
        else:
            line += f" not run | n/a | {fallback} |"
        print(line, flush=True)


def run_dask(args: argparse.Namespace) -> None:
    from distributed import LocalCluster

    options = DecomposeOptions(workers=args.workers, max_iterations=args.iterations)
    print(f"(c) the city through dask.distributed ({args.workers} worker processes)")
    print("| buildings | process pool s | dask s | same objective |")
    print("|---|---|---|---|")
    for total in args.city_buildings:
        site, frame = city(total, args.seeds[0])
        common = {"site": site, "inputs": frame, "level": "city", "site_id": "sh"}
        pooled, pooled_s, _ = timed(**common, method="decomposed", options=options)
        with LocalCluster(n_workers=args.workers, threads_per_worker=1,
                          dashboard_address=None) as cluster:  # fmt: skip
            os.environ["ENERGYHUB_DASK_SCHEDULER"] = cluster.scheduler_address
            try:
                found, seconds, _ = timed(**common, method="decomposed", options=options)
            finally:
                del os.environ["ENERGYHUB_DASK_SCHEDULER"]
        same = (
            pooled is not None
            and found is not None
            and abs(found.objective_cny - pooled.objective_cny) <= 1e-6 * abs(pooled.objective_cny)
        )
        print(f"| {total} | {pooled_s:.1f} | {seconds:.1f} | {'yes' if same else 'NO'} |",
              flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--park-sizes", type=int, nargs="*", default=[12, 100])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 2])
    parser.add_argument("--city-buildings", type=int, nargs="*", default=[100, 300, 1000])
    parser.add_argument("--central-limit-s", type=float, default=600.0)
    parser.add_argument("--central-up-to", type=int, default=300,
                        help="Solve the city centrally only up to this many buildings.")  # fmt: skip
    parser.add_argument("--skip-parks", action="store_true")
    parser.add_argument("--skip-city", action="store_true")
    parser.add_argument("--dask", action="store_true")
    args = parser.parse_args()
    print("load average (1, 5, 15 min) at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if not args.skip_parks:
        run_parks(args)
    if not args.skip_city:
        run_city(args)
    if args.dask:
        run_dask(args)
    print("load average (1, 5, 15 min) at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
