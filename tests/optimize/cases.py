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
