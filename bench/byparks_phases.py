"""Where a city decomposed by park spends its time, phase by phase, as its parks grow.

The city of bench/scale.py (10 heterogeneous parks, a demand-response cap) at --city-buildings,
planned by park on one in-process worker (a one-thread executor), so each phase's time is what
its solves cost, not what two shared cores made of them. Each park task is timed where it runs:

- build: the park's model (`levels.build_scopes`), once per park;
- cold LP: each park's first relaxed answer (its LP from scratch, HiGHS presolve and dual simplex);
- warm LP: the other relaxed answers at a price (the same LP at new prices, from the previous
  basis; since the relaxed rounds share the caps out, only the fixed rounds answer prices);
- share LP: the relaxed answers within a share of the caps (the same LP at new bounds, warm);
- MILP: a park's MILP at the relaxed rounds' last prices (`fix_near`, else `fix_park`);
- fixed LP: the rounds with binaries held (warm);
- final: the parks' mixes and any re-solve within a share; master: the city's master LPs.

Per park size it prints each LP's mean time and simplex iterations. Not a test; run under the
benchmark lock: `flock /tmp/energyhub-bench.lock .venv/bin/python bench/byparks_phases.py`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from energyhub.optimize import byparks, parkwork, plan
from energyhub.optimize.decompose import DecomposeOptions

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bench_parks", HERE / "parks.py")
assert _spec is not None and _spec.loader is not None
parks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(parks)

TASKS = {"relaxed_answer": "LP", "share_answer": "share LP", "fix_near": "MILP", "fix_park": "MILP",
         "fixed_answer": "fixed LP", "final_park": "final", "mixed_park": "final"}  # fmt: skip


class Clock:
    """Seconds and simplex iterations by phase, from wrapped park tasks."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.count: dict[str, int] = defaultdict(int)
        self.iterations: dict[str, int] = defaultdict(int)
        self.seen: set[str] = set()

    def add(self, phase: str, seconds: float, iterations: int = 0) -> None:
        self.seconds[phase] += seconds
        self.count[phase] += 1
        self.iterations[phase] += iterations

    def task(self, name: str, f: Callable[..., Any]) -> Callable[..., Any]:
        def timed(token: str, raw: bytes, *args: Any) -> Any:
            started = time.perf_counter()
            reply = f(token, raw, *args)
            seconds = time.perf_counter() - started
            key = getattr(reply, "key", None)
            phase = TASKS[name]
            iterations = 0
            if phase in ("LP", "share LP", "fixed LP") and key is not None:
                if phase == "LP":
                    phase = "warm LP" if key in self.seen else "cold LP"
                    self.seen.add(key)
                model = parkwork._cache.get((token, key))
                if model is not None:
                    iterations = int(model.warm._h.getInfo().simplex_iteration_count)
            self.add(phase, seconds, iterations)
            return reply

        return timed

    def build(self, f: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            built = f(*args, **kwargs)
            self.add("build", time.perf_counter() - started)
            return built

        return timed

    def master(self, f: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any) -> Any:
            started = time.perf_counter()
            mix = f(*args)
            self.add("master", time.perf_counter() - started)
            return mix

        return timed


def run(total: int, seed: int, iterations: int) -> None:
    clock = Clock()
    originals = {name: getattr(byparks, name) for name in TASKS}
    build, master = parkwork.build_scopes, byparks._master
    for name, f in originals.items():
        setattr(byparks, name, clock.task(name, f))
    parkwork.build_scopes = clock.build(build)  # type: ignore[assignment]
    byparks._master = clock.master(master)  # type: ignore[assignment]
    try:
        site, frame, _ = parks.site_of(10, total // 10, seed=seed, event_fraction=0.8)
        options = DecomposeOptions(executor=ThreadPoolExecutor(1), workers=1,
                                   max_iterations=iterations)  # fmt: skip
        started = time.perf_counter()
        found = plan(site=site, inputs=frame, level="city", site_id="sh", method="decomposed",
                     options=options)  # fmt: skip
        seconds = time.perf_counter() - started
    finally:
        for name, f in originals.items():
            setattr(byparks, name, f)
        parkwork.build_scopes = build
        byparks._master = master
    per = total // 10
    print(f"| {total} ({per} a park) | {seconds:.1f} | {seconds / total * 1000:.0f} | "
          f"{found.iterations} | {found.gap:.3%} |", end="")  # fmt: skip
    for phase in ("build", "cold LP", "warm LP", "share LP", "MILP", "fixed LP", "final",
                  "master"):  # fmt: skip
        n, s, it = clock.count[phase], clock.seconds[phase], clock.iterations[phase]
        cell = f" {s:.1f} ({n})" if n else " —"
        if n and phase in ("cold LP", "warm LP", "share LP", "fixed LP"):
            cell += f", {s / n * 1000:.0f} ms, {it // n:,} it"
        print(f"{cell} |", end="")
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--city-buildings", type=int, nargs="*", default=[100, 300, 1000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=40)
    args = parser.parse_args()
    print("load average (1, 5, 15 min) at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print("| buildings | total s | ms per building | rounds | gap | build s (n) | cold LP s (n), "
          "mean, iterations | warm LP | share LP | MILP s (n) | fixed LP | final | master |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for total in args.city_buildings:
        run(total, args.seed, args.iterations)
    print("load average (1, 5, 15 min) at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
