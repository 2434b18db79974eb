"""Small sites and inputs for optimizer tests, built in code so each test states its numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from energyhub.sites import SiteFile, parse_site


def building_site(
    assets: list[dict[str, Any]],
    *,
    grid: dict[str, Any] | None = None,
    gas: dict[str, Any] | None = None,
    carbon: dict[str, Any] | None = None,
    park_assets: list[dict[str, Any]] | None = None,
    buildings: int = 1,
) -> SiteFile:
    """A city with park `p` and buildings `b1`..`bN`; `assets` go to b1 (ids used as given)."""
    park_grid = {
        "import_max_kw": 10000,
        "tariff": "flat",
        "tariff_prices_cny_per_kwh": {"flat": 0.5},
    }
    park_grid.update(grid or {})
    park: dict[str, Any] = {
        "id": "p",
        "grid": park_grid,
        "assets": park_assets or [],
        "buildings": [
            {"id": f"b{i}", "class": "office-A", "floor_area_m2": 1000, "assets": []}
            for i in range(1, buildings + 1)
        ],
    }
    park["buildings"][0]["assets"] = assets
    if gas is not None:
        park["gas"] = gas
    city = {"id": "c", "carbon": {"price_cny_per_t": 0, **(carbon or {})}, "parks": [park]}
    return parse_site({"version": 1, "timezone": "Asia/Shanghai", "city": city})


def inputs(
    steps: int, step: str = "1h", start: str = "2025-03-03 00:00", **columns: Any
) -> pd.DataFrame:
    """An inputs frame; keyword names use `__` for `:` (b1__electricity_kw → b1:electricity_kw)."""
    index = pd.date_range(start, periods=steps, freq=step, tz="Asia/Shanghai", name="ts")
    data = {
        name.replace("__", ":"): np.broadcast_to(np.asarray(value, dtype=float), (steps,))
        for name, value in columns.items()
    }
    return pd.DataFrame(data, index=index)


def to_csv(frame: pd.DataFrame, path: Any) -> None:
    """Write inputs as the CLI reads them: an RFC 3339 `ts` column first."""
    out = frame.copy()
    out.index = pd.Index([ts.isoformat() for ts in out.index], name="ts")
    out.to_csv(path)


def small_park(
    park: str,
    buildings: int,
    *,
    import_max_kw: float,
    demand_charge_cny_per_kw: float = 40.0,
    chp: bool = True,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A park (as a site-file dict) of buildings with PV, battery, heat pump and heat store, a
    shared CHP, a demand charge; and its inputs columns for a day of hourly steps."""
    rng = np.random.default_rng(seed)
    hours = np.arange(24)
    specs, columns = [], {}
    for i in range(1, buildings + 1):
        bid = f"{park}b{i}"
        specs.append({"id": bid, "class": "office-A", "floor_area_m2": 5000, "assets": [
            {"id": f"{bid}-pv", "type": "pv", "peak_kw": 80},
            {"id": f"{bid}-bess", "type": "battery", "energy_kwh": 200, "power_kw": 100,
             "soc_final": 0.5},
            {"id": f"{bid}-hp", "type": "heat_pump", "heat_max_kw": 150, "cop": 3.2},
            {"id": f"{bid}-tes", "type": "thermal_storage", "carrier": "heat", "energy_kwh": 300,
             "power_kw": 100, "loss_per_h": 0.01, "eta_charge": 0.98, "eta_discharge": 0.98,
             "soc_final": 0.5},
        ]})  # fmt: skip
        working = np.clip(np.sin((hours - 7) / 12 * np.pi), 0, None)
        columns[f"{bid}:electricity_kw"] = 80 + 160 * working + rng.uniform(0, 20, 24)
        columns[f"{bid}:heat_kw"] = 40 + 60 * working + rng.uniform(0, 10, 24)
        columns[f"{bid}-pv:available_kw"] = 60 * np.clip(np.sin((hours - 6) / 12 * np.pi), 0, None)
    spec: dict[str, Any] = {
        "id": park,
        "grid": {
            "import_max_kw": import_max_kw,
            "demand_charge_cny_per_kw": demand_charge_cny_per_kw,
        },
        "gas": {"price_cny_per_nm3": 3.0, "lhv_kwh_per_nm3": 9.97},
        "buildings": specs,
    }
    if chp:
        spec["assets"] = [{"id": f"{park}-chp", "type": "chp", "fuel_max_kw": 300, "eta_el": 0.35,
                           "eta_th": 0.45}]  # fmt: skip
    return spec, columns


def city_site(parks: list[dict[str, Any]], **city: Any) -> SiteFile:
    """A city `c` of the given park dicts."""
    body = {"id": "c", "carbon": {"price_cny_per_t": 0}, "parks": parks, **city}
    return parse_site({"version": 1, "timezone": "Asia/Shanghai", "city": body})


def day_inputs(columns: dict[str, np.ndarray], start: str = "2025-03-03 00:00") -> pd.DataFrame:
    index = pd.date_range(start, periods=24, freq="1h", tz="Asia/Shanghai", name="ts")
    return pd.DataFrame(columns, index=index)
