"""PyPSA side of bench/optimize.py: run in bench/.venv-pypsa, a case as JSON on stdin, JSON out.

The network mirrors energyhub's model: an electricity bus with grid import and export generators,
PV, a battery as a Store between two Links (charge and discharge efficiencies, SOC window and a
terminal SOC through e_min_pu / e_max_pu), and for the heat case a heat bus with a heat pump Link
(COP series), a thermal Store with standing loss, a CHP as a multi-output Link (gas → electricity
+ heat, committable with min load and start-up cost) and a gas boiler Link.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import time
from typing import Any

import numpy as np
import pandas as pd
import pypsa


def _store(n: pypsa.Network, name: str, bus: str, spec: dict[str, Any], steps: int) -> None:
    """A store with charge/discharge links; power limits apply to the bus side as in energyhub."""
    n.add("Bus", f"{name}-bus", carrier=name)
    # PyPSA applies no standing loss in the first snapshot; energyhub loses it during step 0
    hours = float(n.snapshot_weightings["stores"].iloc[0])
    keep_first = (1 - spec.get("loss_per_h", 0.0)) ** hours
    e_min = np.full(steps, spec["soc_min"])
    e_max = np.full(steps, spec["soc_max"])
    e_min[-1] = e_max[-1] = spec["soc_final"]
    n.add(
        "Store",
        name,
        bus=f"{name}-bus",
        e_nom=spec["energy_kwh"],
        e_initial=spec["soc_initial"] * spec["energy_kwh"] * keep_first,
        e_min_pu=pd.Series(e_min, n.snapshots),
        e_max_pu=pd.Series(e_max, n.snapshots),
        standing_loss=spec.get("loss_per_h", 0.0),
    )
    n.add("Link", f"{name}-charge", bus0=bus, bus1=f"{name}-bus",
          p_nom=spec["power_kw"], efficiency=spec["eta_charge"])  # fmt: skip
    n.add("Link", f"{name}-discharge", bus0=f"{name}-bus", bus1=bus,
          p_nom=spec["power_kw"] / spec["eta_discharge"], efficiency=spec["eta_discharge"])  # fmt: skip


def _heat(n: pypsa.Network, case: dict[str, Any]) -> None:
    heat = case["heat"]
    n.add("Bus", "heat")
    n.add("Bus", "gas")
    n.add("Load", "heat-demand", bus="heat", p_set=pd.Series(heat["demand_kw"], n.snapshots))
    n.add("Generator", "gas-supply", bus="gas", p_nom=1e6, marginal_cost=heat["gas_cny_per_kwh"])
    cop = np.asarray(heat["cop"])
    p_nom = heat["hp_heat_max_kw"] / cop.min()
    n.add("Link", "hp", bus0="el", bus1="heat", p_nom=p_nom,
          efficiency=pd.Series(cop, n.snapshots),
          p_max_pu=pd.Series(heat["hp_heat_max_kw"] / cop / p_nom, n.snapshots))  # fmt: skip
    _store(n, "tes", "heat", heat["tes"], len(n.snapshots))
    chp = heat["chp"]
    n.add("Link", "chp", bus0="gas", bus1="el", bus2="heat", p_nom=chp["fuel_max_kw"],
          efficiency=chp["eta_el"], efficiency2=chp["eta_th"], committable=True,
          p_min_pu=chp["min_load"], start_up_cost=chp["start_cost_cny"], up_time_before=0)  # fmt: skip
    boiler = heat["boiler"]
    n.add("Link", "boiler", bus0="gas", bus1="heat", p_nom=boiler["heat_max_kw"] / boiler["eta"],
          efficiency=boiler["eta"])  # fmt: skip


def network(case: dict[str, Any]) -> pypsa.Network:
    n = pypsa.Network()
    steps = len(case["load_kw"])
    n.set_snapshots(pd.date_range("2025-07-15", periods=steps, freq=f"{case['step_minutes']}min"))
    for column in n.snapshot_weightings.columns:
        n.snapshot_weightings[column] = case["step_minutes"] / 60
    n.add("Bus", "el")
    n.add("Load", "load", bus="el", p_set=pd.Series(case["load_kw"], n.snapshots))
    n.add("Generator", "import", bus="el", p_nom=case["import_max_kw"],
          marginal_cost=pd.Series(case["import_price"], n.snapshots))  # fmt: skip
    n.add("Generator", "export", bus="el", p_nom=case["export_max_kw"], p_min_pu=-1.0,
          p_max_pu=0.0, marginal_cost=case["export_price"])  # fmt: skip
    n.add("Generator", "pv", bus="el", p_nom=case["pv_peak_kw"],
          p_max_pu=pd.Series(np.asarray(case["pv_kw"]) / case["pv_peak_kw"], n.snapshots))  # fmt: skip
    _store(n, "bess", "el", case["battery"], steps)
    if "heat" in case:
        _heat(n, case)
    return n


def main() -> None:
    logging.disable(logging.WARNING)
    case = json.load(sys.stdin)
    times, objective = [], float("nan")
    for _ in range(case["repeats"]):
        n = network(case)
        started = time.perf_counter()
        _, condition = n.optimize(
            solver_name="highs",
            solver_options={"mip_rel_gap": 1e-9, "output_flag": False},
            include_objective_constant=False,
        )
        times.append(time.perf_counter() - started)
        objective = float(n.objective + getattr(n, "objective_constant", 0.0))
    json.dump(
        {"objective": objective, "seconds": statistics.median(times), "status": str(condition),
         "version": pypsa.__version__},
        sys.stdout,
    )  # fmt: skip
    print()


if __name__ == "__main__":
    main()
