"""Register maps of common meters, shipped as YAML beside this module, and unit conversion.

A meter's `modbus:` names a map and a point (`map: eastron-sdm630, point: total_power_w`) or gives
the register itself. Either way the value is converted from the unit the register holds into the
unit of the meter's quantity (W → kW for `power_kw`, Wh → kWh for `energy_kwh`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from energyhub.modbus.registers import FORMATS, Point

TO_QUANTITY: dict[str, dict[str, float]] = {
    "power_kw": {"W": 0.001, "kW": 1.0, "MW": 1000.0},
    "energy_kwh": {"Wh": 0.001, "kWh": 1.0, "MWh": 1000.0},
    "temperature_c": {"°C": 1.0, "C": 1.0},
    "humidity_pct": {"%": 1.0},
    "soc_pct": {"%": 1.0},
    "occupancy": {"1": 1.0},
}
"""Factor from a register's unit to the unit of each meter quantity."""


@dataclass(frozen=True, slots=True)
class MapPoint:
    address: int
    unit: str
    function: str
    type: str
    word_order: str
    byte_order: str


@dataclass(frozen=True, slots=True)
class RegisterMap:
    name: str
    model: str
    source: str
    points: dict[str, MapPoint]


def _point(data: dict[str, Any], defaults: dict[str, Any]) -> MapPoint:
    merged = {**defaults, **data}
    if merged["type"] not in FORMATS:
        raise ValueError(f"type {merged['type']!r} is not one of {', '.join(FORMATS)}")
    return MapPoint(
        int(merged["address"]),
        str(merged["unit"]),
        str(merged.get("function", "input")),
        str(merged["type"]),
        str(merged.get("word_order", "big")),
        str(merged.get("byte_order", "big")),
    )


@cache
def register_maps() -> dict[str, RegisterMap]:
    """Every shipped map by name (its file name without `.yaml`)."""
    maps = {}
    folder = resources.files("energyhub.modbus").joinpath("maps")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        data = yaml.safe_load(entry.read_text(encoding="utf-8"))
        defaults = {
            k: data[k] for k in ("function", "type", "word_order", "byte_order") if k in data
        }
        name = entry.name.removesuffix(".yaml")
        points = {key: _point(p, defaults) for key, p in data["points"].items()}
        maps[name] = RegisterMap(name, data["model"], data["source"], points)
    return maps


def unit_factor(unit: str, quantity: str) -> float:
    """The factor from `unit` to the quantity's unit; ValueError naming both if there is none."""
    factors = TO_QUANTITY.get(quantity, {})
    if unit not in factors:
        accepted = ", ".join(factors) or "none: this quantity is not read over Modbus"
        raise ValueError(
            f"a register in {unit!r} cannot feed a {quantity} meter (units: {accepted})"
        )
    return factors[unit]


def map_point(map_name: str, point_name: str, quantity: str) -> Point:
    """The point of a shipped map, scaled into the meter's quantity; ValueError if unknown."""
    maps = register_maps()
    if map_name not in maps:
        raise ValueError(f"no register map {map_name!r} (maps: {', '.join(sorted(maps))})")
    points = maps[map_name].points
    if point_name not in points:
        raise ValueError(
            f"register map {map_name!r} has no point {point_name!r} "
            f"(points: {', '.join(sorted(points))})"
        )
    p = points[point_name]
    return Point(
        p.address,
        p.function,  # type: ignore[arg-type]
        p.type,  # type: ignore[arg-type]
        p.word_order,  # type: ignore[arg-type]
        p.byte_order,  # type: ignore[arg-type]
        unit_factor(p.unit, quantity),
    )
