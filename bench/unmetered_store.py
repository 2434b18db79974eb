"""Benchmark: a store without SOC readings under receding-horizon plans, started from its
soc_initial at every re-plan (before 2026-12-06) or from where its setpoints drove it.

Building l03 of the example (a chiller and the 6,000 kWh l03-ice store, no SOC meter) on the
simulator's loads for `--days` days (no demand charge: the month peak set out of reach), a plan of
`--horizon-h` hours every hour, the first hour of each plan's ice-store setpoints run by the
simulator's storage device (its SOC and power limits, its standing loss). Per way of starting:
the discharge the plans asked for and what the device could execute, and the store's level at
the end of each local day.

    flock /tmp/energyhub-bench.lock .venv/bin/python bench/unmetered_store.py [--days 3]
"""

from __future__ import annotations

import argparse
from datetime import datetime

import numpy as np
import pandas as pd

from energyhub.optimize import plan
from energyhub.plans.tracked import tracked_soc_kwh
from energyhub.scheduler.state import with_initial_soc
from energyhub.sites import SiteFile, ThermalStorage, load_site
from simulators.devices import StorageState
from simulators.profiles import building_loads
from simulators.weather import TimeGrid

STEP_H = 0.25
STEPS_PER_REPLAN = 4
START = datetime.fromisoformat("2025-07-07T00:00:00+08:00")


def inputs(site: SiteFile, days: int, horizon_steps: int) -> pd.DataFrame:
    """l03's electricity and cooling demand from the simulator's profiles (a warm week)."""
    found = site.find_building("l03")
    assert found is not None
    grid = TimeGrid(START, STEP_H * 3600, days * 96 + horizon_steps)
    outdoor_c = 29.0 + 5.0 * np.sin(2 * np.pi * (grid.local_hours() - 9.0) / 24.0)
    loads = building_loads(found[1], grid, outdoor_c, np.random.default_rng(1))
    index = pd.date_range(START, periods=grid.steps, freq="15min")
    frame = pd.DataFrame(
        {"l03:electricity_kw": loads.electric_kw, "l03:cooling_kw": loads.cooling_kw}, index=index
    )
    frame["l03:month_peak_kw"] = 1e5  # the demand charge out of the way: energy arbitrage only
    return frame


def run(site: SiteFile, frame: pd.DataFrame, days: int, horizon: int, tracked: bool) -> str:
    found = site.find_building("l03")
    assert found is not None
    ice = next(a for a in found[1].assets if isinstance(a, ThermalStorage))
    device = StorageState(ice, ice.soc_initial)
    sent: list[float] = []
    asked = executed = 0.0
    ends = []
    for k in range(0, days * 96, STEPS_PER_REPLAN):
        soc = ice.soc_initial
        if tracked and sent:
            soc = float(tracked_soc_kwh(ice, np.array(sent), STEP_H)[-1]) / ice.energy_kwh
        result = plan(
            with_initial_soc(site, {ice.id: soc}), frame.iloc[k : k + horizon],
            level="building", site_id="l03", time_limit_s=30,
        )  # fmt: skip
        for _, row in result.schedule.iloc[:STEPS_PER_REPLAN].iterrows():
            kw = float(row[f"{ice.id}:charge_kw"] - row[f"{ice.id}:discharge_kw"])
            got = device.step(kw, STEP_H)
            sent.append(kw)
            if kw < 0:
                asked, executed = asked - kw * STEP_H, executed - got * STEP_H
        if (k + STEPS_PER_REPLAN) % 96 == 0:
            ends.append(f"{device.soc * ice.energy_kwh:,.0f}")
    how = "from the setpoints" if tracked else "from soc_initial"
    return (
        f"{how}: discharge asked {asked:,.0f} kWh, executed {executed:,.0f}; "
        f"level at each day's end {', '.join(ends)} kWh"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3, help="Simulated days.")
    parser.add_argument("--horizon-h", type=int, default=24, help="Hours each plan covers.")
    parser.add_argument("--site", default="examples/expo-park.yaml", help="Site file.")
    args = parser.parse_args()
    site = load_site(args.site)
    horizon = args.horizon_h * 4
    frame = inputs(site, args.days, horizon)
    for tracked in (False, True):
        print(run(site, frame, args.days, horizon, tracked))


if __name__ == "__main__":
    main()
