"""Heterogeneous parks for the decomposition benchmark and its tests, seeded.

Buildings of five classes (office, lab, data centre, hotel, retail) with sizes over an order of
magnitude, each with its own load shapes (electricity, heat, cooling) and asset mix: PV,
batteries, heat pumps, chillers, heat and ice storage; a few with their own CHP (min load and
start cost: binaries) or a gas boiler. Equipment comes from a small catalogue per class (two
COPs, two storage durations), as a park's buildings are fitted in practice. The park's
connection limit is 0.80–0.95 × its net peak (electricity + heat and cooling at their COPs − PV,
every building as if nothing were shifted), so it binds; a demand charge prices the peak.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from energyhub.sites import SiteFile, parse_site

TZ = "Asia/Shanghai"
GAS = {"price_cny_per_nm3": 3.8, "lhv_kwh_per_nm3": 9.97}
CLASSES = ("office-A", "lab", "data-center", "hotel", "retail")
LIMIT_FRACTIONS = (0.80, 0.95)
"""The connection limit as a share of the park's net peak: drawn per park in this range."""

DEMAND_CHARGE = 1.5
"""CNY per kW of the day's peak: a month's charge (≈ 45 CNY/kW) spread over its days, so the
connection limit, not the charge, is what holds the peak down."""

SIZE_RANGE = (0.3, 3.0)
"""A building's size factor (× 100 kW of electric peak): an order of magnitude apart."""


def day_index(steps: int = 96, start: str = "2025-01-15") -> pd.DatetimeIndex:
    """One day of `steps` steps in the site's zone."""
    return pd.date_range(start, periods=steps, freq=f"{24 * 60 // steps}min", tz=TZ, name="ts")


def _bump(hours: np.ndarray, start: float, end: float) -> np.ndarray:
    """0 outside [start, end), a half sine inside: a working day's or an evening's hump."""
    inside = (hours >= start) & (hours < end)
    return np.where(inside, np.sin((hours - start) / (end - start) * np.pi), 0.0)


def _shapes(kind: str, hours: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-unit electricity, heat and cooling demand of one class (peak near 1 for electricity)."""
    jitter = rng.uniform(-0.7, 0.7)
    h = hours - jitter
    if kind == "office-A":
        out = {"electricity": 0.15 + 0.85 * _bump(h, 7.5, 19.5),
               "heat": 0.1 + 0.6 * _bump(h, 6.0, 18.0)}  # fmt: skip
    elif kind == "lab":
        out = {"electricity": 0.45 + 0.55 * _bump(h, 8.0, 20.0), "heat": 0.35 + 0.2 * _bump(h, 7, 19),
               "cooling": 0.2 + 0.1 * _bump(h, 9.0, 18.0)}  # fmt: skip
    elif kind == "data-center":
        out = {"electricity": 0.85 + 0.15 * _bump(h, 10.0, 20.0),
               "cooling": 0.75 + 0.1 * _bump(h, 11.0, 20.0)}  # fmt: skip
    elif kind == "hotel":
        out = {"electricity": 0.25 + 0.35 * _bump(h, 6.0, 10.0) + 0.75 * _bump(h, 17.0, 23.0),
               "heat": 0.2 + 0.6 * _bump(h, 5.5, 9.5) + 0.7 * _bump(h, 18.0, 23.5)}  # fmt: skip
    else:  # retail
        out = {"electricity": 0.1 + 0.9 * _bump(h, 9.5, 21.5), "heat": 0.25 * _bump(h, 9, 21),
               "cooling": 0.2 * _bump(h, 11.0, 20.0)}  # fmt: skip
    noise = rng.uniform(0.0, 0.04, hours.size)
    return {k: np.maximum(v + noise * v.max(), 0.0) for k, v in out.items()}


def _pv(hours: np.ndarray, peak_kw: float) -> np.ndarray:
    return peak_kw * 0.55 * np.clip(np.sin((hours - 6.8) / 10.5 * np.pi), 0.0, None)


def _storage(aid: str, kind: str, power: float, hours: float, **extra: Any) -> dict[str, Any]:
    return {"id": aid, "type": kind, "power_kw": round(power, 1),
            "energy_kwh": round(power * hours, 1), "soc_initial": 0.5, "soc_final": 0.5,
            **extra}  # fmt: skip


def building(
    bid: str, kind: str, size: float, index: pd.DatetimeIndex, rng: np.random.Generator
) -> tuple[dict[str, Any], dict[str, np.ndarray], float]:
    """One building: its site entry, its input columns and its net peak contribution (kW)."""
    hours = np.asarray(index.hour + index.minute / 60.0)
    shapes = _shapes(kind, hours, rng)
    scale = 100.0 * size
    demand = {k: scale * v for k, v in shapes.items()}
    columns = {f"{bid}:{k}_kw": v for k, v in demand.items()}
    assets: list[dict[str, Any]] = []
    electric = demand["electricity"].copy()
    if rng.random() < 0.8:
        peak = round(scale * float(rng.choice([0.3, 0.6])), 1)
        assets.append({"id": f"{bid}-pv", "type": "pv", "peak_kw": peak})
        columns[f"{bid}-pv:available_kw"] = _pv(hours, peak)
        electric -= columns[f"{bid}-pv:available_kw"]
    power = scale * float(rng.choice([0.3, 0.45]))
    assets.append(_storage(f"{bid}-bess", "battery", power, float(rng.choice([3.0, 4.0]))))
    chp = rng.random() < 0.05 and kind in ("hotel", "lab")
    if chp:
        assets.append({"id": f"{bid}-chp", "type": "chp", "fuel_max_kw": round(1.2 * scale, 1),
                       "eta_el": 0.35, "eta_th": 0.45, "min_load": 0.4,
                       "start_cost_cny": 50.0})  # fmt: skip
    if "heat" in demand:
        heat_peak = float(demand["heat"].max())
        if not chp and rng.random() < 0.08:
            assets.append({"id": f"{bid}-boiler", "type": "gas_boiler",
                           "heat_max_kw": round(1.2 * heat_peak, 1), "eta": 0.92})  # fmt: skip
        cop = float(rng.choice([3.0, 3.5]))
        assets.append({"id": f"{bid}-hp", "type": "heat_pump",
                       "heat_max_kw": round(1.3 * heat_peak, 1), "cop": cop})  # fmt: skip
        if not chp and not any(a["type"] == "gas_boiler" for a in assets):
            electric += demand["heat"] / cop
        if rng.random() < 0.5:
            assets.append(_storage(f"{bid}-tes", "thermal_storage", 0.4 * heat_peak, 3.0,
                                   carrier="heat", eta_charge=0.98, eta_discharge=0.98,
                                   loss_per_h=0.005))  # fmt: skip
    if "cooling" in demand:
        cooling_peak = float(demand["cooling"].max())
        cop = float(rng.choice([4.0, 5.0]))
        assets.append({"id": f"{bid}-chiller", "type": "electric_chiller",
                       "cooling_max_kw": round(1.3 * cooling_peak, 1), "cop": cop})  # fmt: skip
        electric += demand["cooling"] / cop
        if kind == "data-center" or rng.random() < 0.5:
            assets.append(_storage(f"{bid}-ice", "thermal_storage", 0.4 * cooling_peak, 4.0,
                                   carrier="cooling", eta_charge=0.9, eta_discharge=0.95,
                                   loss_per_h=0.01))  # fmt: skip
    spec = {"id": bid, "class": kind, "floor_area_m2": round(2000 * size, 1) + 100,
            "assets": assets}  # fmt: skip
    return spec, columns, electric


SHIFTABLE = 0.6
"""Energy above the limit may be at most this share of the room below it (storage losses, SOC
windows): a park whose loads are too flat for its drawn fraction gets the lowest limit that
meets this instead (the benchmark prints each park's limit ÷ net peak)."""


def _floor(net: np.ndarray) -> float:
    """The lowest limit whose energy above is within SHIFTABLE of the room below it before the
    last step above it (stores end the day where they began: they charge before the peak)."""
    low, high = float(net.mean()), float(net.max())
    for _ in range(40):
        mid = (low + high) / 2
        last = int(np.flatnonzero(net > mid).max())
        above = np.clip(net - mid, 0, None).sum()
        below = np.clip(mid - net[:last], 0, None).sum()
        low, high = (mid, high) if above > SHIFTABLE * below else (low, mid)
    return high


BATTERY_MARGIN = 1.5
"""The park's batteries hold at least this many times the energy and power above its limit."""


def _fit_batteries(specs: list[dict[str, Any]], above_kw: np.ndarray, dt_h: float) -> None:
    """Scale every battery alike so that together they can carry the park over its limit."""
    batteries = [a for s in specs for a in s["assets"] if a["type"] == "battery"]
    power = sum(a["power_kw"] for a in batteries)
    usable = 0.4 * sum(a["energy_kwh"] for a in batteries)  # charged from 0.5 to 0.9 before
    need_kw = float(np.clip(above_kw, 0.0, None).max())
    need_kwh = float(np.clip(above_kw, 0.0, None).sum() * dt_h)
    factor = max(1.0, BATTERY_MARGIN * need_kw / power, BATTERY_MARGIN * need_kwh / usable)
    for a in batteries:
        a["power_kw"], a["energy_kwh"] = (
            round(factor * a["power_kw"], 1),
            round(factor * a["energy_kwh"], 1),
        )


def park(
    pid: str, buildings: int, index: pd.DatetimeIndex, seed: int
) -> tuple[dict[str, Any], dict[str, np.ndarray], float]:
    """A park of `buildings` unlike buildings behind a connection limit that binds; and the
    limit as a share of the park's net peak."""
    rng = np.random.default_rng(seed)
    specs, columns = [], {}
    net = np.zeros(len(index))
    low, high = np.log(SIZE_RANGE[0]), np.log(SIZE_RANGE[1])
    for b in range(buildings):
        kind = CLASSES[int(rng.integers(len(CLASSES)))]
        size = float(np.exp(rng.uniform(low, high)))
        spec, cols, electric = building(f"{pid}-b{b:03d}", kind, size, index, rng)
        specs.append(spec)
        columns |= cols
        net += electric
    limit = round(max(float(rng.uniform(*LIMIT_FRACTIONS)) * float(net.max()), _floor(net)), 1)
    _fit_batteries(specs, net - limit, 24.0 / len(index))
    grid = {"import_max_kw": limit, "demand_charge_cny_per_kw": DEMAND_CHARGE}
    spec = {"id": pid, "grid": grid, "gas": GAS, "buildings": specs}
    return spec, columns, limit / float(net.max())


EVENT = ("2025-01-15T17:00:00+08:00", "2025-01-15T19:00:00+08:00")
"""The city's demand-response event (local evening peak)."""


def site_of(
    parks: int, per_park: int, seed: int = 0, steps: int = 96, event_fraction: float | None = None
) -> tuple[SiteFile, pd.DataFrame, list[float]]:
    """A city `sh` of `parks` heterogeneous parks `p00`, `p01`, …, its inputs, and each park's
    limit ÷ net peak; with `event_fraction`, a demand-response event caps the city's import
    during EVENT at that share of the parks' summed limits."""
    index = day_index(steps)
    specs, columns, fractions = [], {}, []
    for p in range(parks):
        spec, cols, fraction = park(f"p{p:02d}", per_park, index, seed * 1000 + p)
        specs.append(spec)
        columns |= cols
        fractions.append(fraction)
    city: dict[str, Any] = {"id": "sh", "parks": specs}
    if event_fraction is not None:
        cap = event_fraction * sum(s["grid"]["import_max_kw"] for s in specs)
        city["demand_response"] = [{"start": EVENT[0], "end": EVENT[1], "import_max_kw": cap}]
    site = parse_site({"version": 1, "timezone": TZ, "city": city})
    return site, pd.DataFrame(columns, index=index), fractions
