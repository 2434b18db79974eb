"""Where a park's heat went in a closed-loop run: its setpoints replayed through the simulator.

bench/closed_loop.py keeps its database (ENERGYHUB_DB_URL): the setpoints the devices acknowledged
are in `setpoints`. This rebuilds the run's plant (the same site, seed, start and 1-min steps as
energyhub.demo.live), replays those setpoints through the simulator on the path (so a change to
the simulator can be measured on the same schedule) and tallies, over a window of one park: the
CHPs' electricity, gas and heat, what absorption chillers took, the CHP heat they did not take
(district heat to the buildings, or with the simulator before its district heat, dumped), each
boiler's fuel, the park's import, and the CO₂ of the import and of all gas burned (metered or
not). The local controller's holds of the import limit are not replayed (runs before schema
version 16 did not store the limit), so the import is the schedule's, not the meters'.

    ENERGYHUB_DB_URL=postgresql://…/<db> .venv/bin/python bench/heat_balance.py --site FILE
        --live-start 2026-12-05T03:15:00+00:00 --days 2 --park expo
        --from 2026-12-05T16:00:00+00:00 --to 2026-12-06T16:00:00+00:00
"""

from __future__ import annotations

import argparse
import os
from datetime import datetime, timedelta

import numpy as np
import psycopg

from energyhub.demo.live import HISTORY_DAYS, SEED, SIM_STEP_S
from energyhub.sites import CHP, AbsorptionChiller, ElectricBoiler, GasBoiler, load_site
from simulators.engine import Engine, SetpointBook
from simulators.plant import build_plant
from simulators.weather import TimeGrid

SETPOINT_HOLD_S = 3600.0
"""How long a setpoint holds without a newer one (simulators.simulate's default)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", required=True)
    parser.add_argument("--live-start", required=True, type=datetime.fromisoformat)
    parser.add_argument("--days", required=True, type=float, help="The run's live days.")
    parser.add_argument("--history-days", type=float, default=HISTORY_DAYS)
    parser.add_argument("--park", required=True)
    parser.add_argument("--from", dest="start", required=True, type=datetime.fromisoformat)
    parser.add_argument("--to", dest="end", required=True, type=datetime.fromisoformat)
    args = parser.parse_args()
    site = load_site(args.site)
    begin = args.live_start - timedelta(days=args.history_days)
    steps = int((args.history_days + args.days) * 86_400 / SIM_STEP_S)
    plant = build_plant(site, TimeGrid(begin, SIM_STEP_S, steps), SEED)
    book = SetpointBook(SETPOINT_HOLD_S)
    node_of = {a.id: n.id for n in plant.nodes() for a in n.site.assets}
    with psycopg.connect(os.environ["ENERGYHUB_DB_URL"]) as conn:
        rows = conn.execute(
            "SELECT asset_id, extract(epoch FROM ts)::float8, p_kw FROM setpoints "
            "WHERE status = 'acked'"
        ).fetchall()
    for asset_id, ts_s, p_kw in rows:
        if asset_id in node_of:
            book.add(node_of[asset_id], asset_id, ts_s, p_kw)
    engine = Engine(plant, book, 0.0)

    def index(at: datetime) -> int:
        return int((at - begin).total_seconds() // SIM_STEP_S)

    live = index(args.live_start)
    for t in range(live, min(index(args.end), steps)):
        engine.step(t)
    sl = slice(max(index(args.start), live), min(index(args.end), steps))
    h = SIM_STEP_S / 3600.0
    park = next(p for p in plant.parks if p.id == args.park)
    tally: dict[str, float] = {}
    unused = np.zeros(sl.stop - sl.start)
    gas_kwh = 0.0
    for node in park.subtree():
        for asset in node.site.assets:
            flows = node.flows[asset.id].readings
            if isinstance(asset, CHP):
                for carrier in ("electricity", "gas", "heat"):
                    tally[f"{asset.id} {carrier} kWh"] = flows[carrier][sl].sum() * h
                gas_kwh += flows["gas"][sl].sum() * h
                unused += flows["heat"][sl]
            elif isinstance(asset, AbsorptionChiller):
                tally[f"{asset.id} heat kWh"] = flows["heat"][sl].sum() * h
                unused -= flows["heat"][sl]
            elif isinstance(asset, GasBoiler):
                tally[f"{asset.id} gas kWh"] = flows["gas"][sl].sum() * h
                gas_kwh += flows["gas"][sl].sum() * h
            elif isinstance(asset, ElectricBoiler):
                tally[f"{asset.id} electricity kWh"] = flows["electricity"][sl].sum() * h
    tally[f"{park.id} CHP heat not taken by absorption kWh"] = unused.sum() * h
    import_kwh = float(np.maximum(park.grid_kw[sl], 0.0).sum() * h)
    tally[f"{park.id} import kWh"] = import_kwh
    factors = site.city.carbon
    co2_import, co2_gas = import_kwh * factors.grid_kg_per_kwh, gas_kwh * factors.gas_kg_per_kwh
    print(f"{args.park} {args.start:%Y-%m-%d %H:%M} → {args.end:%Y-%m-%d %H:%M} UTC, "
          f"{len(rows)} setpoints replayed")  # fmt: skip
    for name, value in tally.items():
        print(f"  {name:48s} {value:12,.0f}")
    print(f"  CO₂ kg: import {co2_import:,.0f} + gas {co2_gas:,.0f} = {co2_import + co2_gas:,.0f}")


if __name__ == "__main__":
    main()
