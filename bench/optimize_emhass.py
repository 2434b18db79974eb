"""EMHASS side of bench/optimize.py: run in bench/.venv-emhass, a case as JSON on stdin, JSON out.

The configuration starts from EMHASS's own defaults (build_config / build_params) and sets the
case: 15-min steps, PV as given, one battery (W and Wh, as EMHASS counts), no deferrable loads,
grid limits, a tight MIP gap, and battery discharge to the grid allowed as in energyhub.
The objective is recomputed from EMHASS's grid powers, so both sides count the same terms.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pathlib
import statistics
import sys
import tempfile
import time
from typing import Any

import emhass
import numpy as np
import pandas as pd
from emhass import utils
from emhass.optimization import Optimization


def _config(
    case: dict[str, Any], logger: logging.Logger, conf: dict[str, Any]
) -> tuple[dict, dict, dict]:
    battery = case["battery"]
    config = asyncio.run(utils.build_config(conf, logger, conf["defaults_path"]))
    config.update(
        {
            "optimization_time_step": case["step_minutes"],
            "delta_forecast_daily": 1,
            "number_of_deferrable_loads": 0,
            "nominal_power_of_deferrable_loads": [],
            "minimum_power_of_deferrable_loads": [],
            "operating_hours_of_each_deferrable_load": [],
            "start_timesteps_of_each_deferrable_load": [],
            "end_timesteps_of_each_deferrable_load": [],
            "treat_deferrable_load_as_semi_cont": [],
            "set_deferrable_load_single_constant": [],
            "set_deferrable_startup_penalty": [],
            "cost_forecast_per_deferrable_load": [],
            "is_electric_load": [],
            "deferrable_load_max_cost": [],
            "set_deferrable_max_startups": [],
            "def_minimum_on_time": [],
            "set_use_pv": True,
            "set_use_battery": True,
            "set_nodischarge_to_grid": False,
            "inverter_ac_output_max": 1e9,
            "inverter_ac_input_max": 1e9,
            "maximum_power_from_grid": case["import_max_kw"] * 1000,
            "maximum_power_to_grid": case["export_max_kw"] * 1000,
            "battery_nominal_energy_capacity": battery["energy_kwh"] * 1000,
            "battery_charge_power_max": battery["power_kw"] * 1000,
            "battery_discharge_power_max": battery["power_kw"] * 1000,
            "battery_charge_efficiency": battery["eta_charge"],
            "battery_discharge_efficiency": battery["eta_discharge"],
            "battery_minimum_state_of_charge": battery["soc_min"],
            "battery_maximum_state_of_charge": battery["soc_max"],
            "battery_target_state_of_charge": battery["soc_final"],
            "lp_solver_mip_rel_gap": 1e-9,
            "num_threads": 1,
        }
    )
    _, secrets = asyncio.run(utils.build_secrets(conf, logger, no_response=True))
    params = asyncio.run(utils.build_params(conf, secrets, config, logger))
    return utils.get_yaml_parse(params, logger)


def main() -> None:
    case = json.load(sys.stdin)
    logger = logging.getLogger("emhass-bench")
    logger.setLevel(logging.ERROR)
    root = pathlib.Path(emhass.__file__).parent
    data = pathlib.Path(tempfile.mkdtemp())
    conf = {"data_path": data, "root_path": root, "defaults_path": root / "data/config_defaults.json",
            "associations_path": root / "data/associations.csv"}  # fmt: skip
    retrieve, optim, plant = _config(case, logger, conf)
    step = case["step_minutes"]
    index = pd.date_range("2025-07-15", periods=len(case["load_kw"]), freq=f"{step}min", tz="UTC")
    frame = pd.DataFrame(
        {"unit_load_cost": case["import_price"], "unit_prod_price": case["export_price"]},
        index=index,
    )
    pv = pd.Series(np.asarray(case["pv_kw"]) * 1000, index=index)
    load = pd.Series(np.asarray(case["load_kw"]) * 1000, index=index)
    soc = (case["battery"]["soc_initial"], case["battery"]["soc_final"])
    times, result = [], None
    for _ in range(case["repeats"]):
        opt = Optimization(retrieve, optim, plant, "unit_load_cost", "unit_prod_price", "profit",
                           conf, logger)  # fmt: skip
        started = time.perf_counter()
        result = opt.perform_dayahead_forecast_optim(
            frame, pv, load, soc_init=soc[0], soc_final=soc[1]
        )
        times.append(time.perf_counter() - started)
    assert result is not None
    hours = step / 60
    grid_in, grid_out = result["P_grid_pos"].to_numpy(), -result["P_grid_neg"].to_numpy()
    objective = float(
        np.sum(np.asarray(case["import_price"]) * grid_in - case["export_price"] * grid_out)
        * hours
        / 1000
    )
    json.dump(
        {"objective": objective, "seconds": statistics.median(times), "status": str(opt.optim_status),
         "version": emhass.__version__ if hasattr(emhass, "__version__") else "?"},
        sys.stdout,
    )  # fmt: skip
    print()


if __name__ == "__main__":
    main()
