"""The buildings' demand as reconstructed from the meters against the simulator's own loads.

bench/closed_loop.py keeps its database (ENERGYHUB_DB_URL). This reads, per park over the run's
`--days` from its `--start` (both as the run had them: they make the simulator's grid), each
building's electricity demand as the counterfactual and perfect foresight get it
(energyhub.plans.counterfactual.metered_inputs) and the simulator's electric load of that building
(simulators.plant: the same site, seed and one-minute grid as the run, so the same loads), in
15-minute means. What a chiller drew where its building has no cooling meter, or a heat pump or
electric boiler where it has no heat meter, stays inside the reconstructed load by rule (noted
there): it is added to the truth before comparing (machines with a fixed COP, each making what it
can of the demand in the simulator's order; district heat the park sent in a boiler's place is not
known here, so a boiler's share reads high by it). Prints per building the mean, least and greatest
difference and its mean absolute value (kW), then per park the mean difference by local hour.

    ENERGYHUB_DB_URL=postgresql://…/<db> .venv/bin/python bench/demand_truth.py
        --start 2026-11-30T10:30+00:00 --days 3 [--history-days 14] [--site FILE]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pandas as pd

from energyhub.config import load_settings
from energyhub.demo.live import SEED, SIM_STEP_S
from energyhub.optimize.scope import resolve_scope
from energyhub.plans.counterfactual import metered_inputs
from energyhub.sites import (
    Building,
    ElectricBoiler,
    ElectricChiller,
    GasBoiler,
    HeatPump,
    SiteFile,
    load_site,
)
from energyhub.store.db import connect, installed_backend
from simulators.plant import build_plant
from simulators.weather import TimeGrid

SITE = Path(__file__).resolve().parents[1] / "examples" / "expo-park.yaml"
STEP = pd.Timedelta(minutes=15)


def true_loads(
    site: SiteFile, live_start: pd.Timestamp, history_days: float, days: float
) -> dict[str, pd.DataFrame]:
    """Each building's electric load, heat and cooling demand (kW, 15-minute means) as the closed
    loop's simulation made them (energyhub.demo.live: its seed, start and step)."""
    start = live_start - pd.Timedelta(days=history_days)
    steps = int((history_days + days) * 86_400 / SIM_STEP_S)
    plant = build_plant(site, TimeGrid(start.to_pydatetime(), SIM_STEP_S, steps), SEED)
    index = pd.date_range(start, periods=steps, freq=pd.Timedelta(seconds=SIM_STEP_S))
    out = {}
    for park in plant.parks:
        for node in park.children:
            if node.loads is not None:
                frame = pd.DataFrame(
                    {
                        "electricity": node.loads.electric_kw,
                        "heat": node.loads.heat_kw,
                        "cooling": node.loads.cooling_kw,
                    },
                    index=index,
                )
                out[node.id] = frame.resample(STEP).mean()
    return out


def left_inside_kw(building: Building, true: pd.DataFrame) -> pd.Series:
    """What its chillers drew where the building has no cooling meter, and its heat pumps and
    electric boilers where it has no heat meter (it stays in the load), in the simulator's
    merit order: heat pumps, gas boilers, electric boilers; chillers."""
    metered = {m.carrier for m in building.meters if m.asset is None and m.submeter_of is None}
    inside = pd.Series(0.0, index=true.index)
    left = {carrier: true[carrier].copy() for carrier in ("heat", "cooling")}
    for kind in (HeatPump, GasBoiler, ElectricBoiler, ElectricChiller):
        for asset in (a for a in building.assets if isinstance(a, kind)):
            carrier = "cooling" if isinstance(asset, ElectricChiller) else "heat"
            limit = (
                asset.cooling_max_kw if isinstance(asset, ElectricChiller) else asset.heat_max_kw
            )
            made = left[carrier].clip(lower=0.0, upper=limit)
            left[carrier] = left[carrier] - made
            if carrier in metered or isinstance(asset, GasBoiler):
                continue
            if isinstance(asset, ElectricBoiler):
                inside += made / asset.eta
            elif isinstance(asset, HeatPump | ElectricChiller) and asset.cop is not None:
                inside += made / asset.cop
    return inside


async def compare(site: SiteFile, start: pd.Timestamp, days: float, history_days: float) -> None:
    truth = true_loads(site, start, history_days, days)
    index = pd.date_range(start, start + pd.Timedelta(days=days), freq=STEP, inclusive="left")
    async with connect(str(load_settings().db_url)) as conn:
        backend = await installed_backend(conn)
        for park in site.city.parks:
            scope = resolve_scope(site, "park", park.id)
            found = await metered_inputs(conn, backend, site, scope, index, pd.DataFrame())
            total = pd.Series(0.0, index=index)
            print(f"{park.id}: reconstructed − true electricity demand (kW)")
            for building in park.buildings:
                true = truth[building.id].reindex(index)
                inside = left_inside_kw(building, true)
                diff = found.frame[f"{building.id}:electricity_kw"] - true["electricity"] - inside
                total = total + diff.fillna(0.0)
                print(
                    f"  {building.id}: true {true['electricity'].mean():7.1f} (+ {inside.mean():5.1f}"
                    f" inside), mean {diff.mean():+6.1f}, least {diff.min():+7.1f}, greatest "
                    f"{diff.max():+7.1f}, mean absolute {diff.abs().mean():6.1f}"
                )
            hourly = total.groupby(index.tz_convert(site.tz).hour).mean()
            print(f"  {park.id} summed: mean {total.mean():+.1f}; by local hour:")
            print("   ", " ".join(f"{h:02d}h {v:+.0f}" for h, v in hourly.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", required=True, help="The run's live start, ISO with a zone.")
    parser.add_argument("--days", type=float, default=3.0, help="Days to compare from --start.")
    parser.add_argument("--history-days", type=float, default=14.0, help="The run's history.")
    parser.add_argument("--site", type=Path, default=SITE, help="The run's site file.")
    args = parser.parse_args()
    start = pd.Timestamp(args.start).tz_convert("UTC")
    asyncio.run(compare(load_site(args.site), start, args.days, args.history_days))


if __name__ == "__main__":
    main()
