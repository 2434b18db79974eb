"""Is a city park's warm LP really warm, and what does each relaxed round change in it?

Plans the city of bench/scale.py (10 parks, a demand-response cap) at --city-buildings by park
on one in-process worker, recording the prices each park's relaxed rounds asked. Then, for
--park, it rebuilds that park's LP in HiGHS and replays them:

- cold: the first answer (presolve and dual simplex from scratch);
- warm: each later price, from the previous basis (as `parkwork` does); and the same price
  again (a warm start that is warm takes 0 iterations);
- how many of the park's nodes (head and buildings) changed their schedule between
  consecutive answers, and the park's import in the capped steps (the channels);
- with --primal: the warm re-solves by primal simplex (the previous basis stays primal
  feasible when only costs change).

Since the city's caps are shared out among the parks (`sharecuts`), the relaxed rounds ask one
price (none) and then answer within shares: this replays the price rounds of the method before
(commit `a1b04bc` and earlier), where each round asked a new price.

Seconds are CPU seconds of this process. Not a test; run under the benchmark lock:
`flock /tmp/energyhub-bench.lock .venv/bin/python bench/park_lp_replay.py`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pickle
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from energyhub.optimize import byparks, parkwork, plan
from energyhub.optimize.decompose import DecomposeOptions
from energyhub.optimize.levels import build_scopes

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bench_parks", HERE / "parks.py")
assert _spec is not None and _spec.loader is not None
parks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(parks)


def record(total: int, seed: int) -> tuple[dict[str, bytes], dict[str, list[Any]]]:
    """Each park's recipe and the prices its relaxed rounds asked, in order."""
    raws: dict[str, bytes] = {}
    prices: dict[str, list[Any]] = {}
    original = byparks.relaxed_answer

    def asked(token: str, raw: bytes, price: Any, time_limit_s: float | None) -> Any:
        key = pickle.loads(raw).key  # noqa: S301 - our own recipe
        raws[key] = raw
        prices.setdefault(key, []).append(price.copy())
        return original(token, raw, price, time_limit_s)

    byparks.relaxed_answer = asked  # type: ignore[assignment]
    try:
        site, frame, _ = parks.site_of(10, total // 10, seed=seed, event_fraction=0.8)
        options = DecomposeOptions(executor=ThreadPoolExecutor(1), workers=1)
        plan(site=site, inputs=frame, level="city", site_id="sh", method="decomposed",
             options=options)  # fmt: skip
    finally:
        byparks.relaxed_answer = original  # type: ignore[assignment]
    return raws, prices


def replay(raw: bytes, prices: list[Any], primal: bool) -> None:
    recipe = pickle.loads(raw)  # noqa: S301 - our own recipe
    built = build_scopes((recipe.scope,), recipe.inputs)
    problem = built.problem
    model = parkwork._park_model(recipe, built)
    highs = model.warm._h
    owner = {a.id: node.id for node, a in recipe.scope.assets()}
    owner |= {node.id: node.id for node in recipe.scope.nodes}
    of = np.empty(problem.n_variables, dtype=object)
    for name, var in problem.variables.items():
        of[var.slice] = owner.get(name.rpartition(":")[0], "")
    nodes = sorted(set(of))
    print(f"park {recipe.key}: {problem.n_variables:,} columns × {problem.a.shape[0]:,} rows, "
          f"{len(nodes)} nodes, {len(prices)} prices")  # fmt: skip
    print("| answer | CPU s | simplex iterations | same price again: iterations | nodes changed "
          "| import in the capped steps, kW |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    last = None
    for i, price in enumerate(prices):
        if i == 1 and primal:
            highs.setOptionValue("simplex_strategy", 4)
        model.warm.set_costs(np.arange(problem.n_variables), problem.c + model.channels.T @ price)
        started = time.process_time()
        result = model.warm.solve()
        seconds = time.process_time() - started
        iterations = highs.getInfo().simplex_iteration_count
        model.warm.solve()
        again = highs.getInfo().simplex_iteration_count
        assert result.x is not None
        x = result.x[: problem.n_variables]  # the share rows' excess columns come after
        changed = "—"
        if last is not None:
            moved = np.abs(x - last) > 1e-6
            changed = str(len({node for node in of[moved]}))
        last = x
        q = " ".join(f"{v:.0f}" for v in model.channels @ x)
        print(f"| {'cold' if i == 0 else f'warm {i}'} | {seconds:.3f} | {iterations:,} | {again} "
              f"| {changed} | {q} |", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--city-buildings", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--park", default="p00")
    parser.add_argument("--primal", action="store_true")
    args = parser.parse_args()
    print("load average (1, 5, 15 min) at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    raws, prices = record(args.city_buildings, args.seed)
    replay(raws[args.park], prices[args.park], args.primal)
    print("load average (1, 5, 15 min) at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
