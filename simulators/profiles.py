"""Building loads by class: electricity, heating and cooling demand, occupancy and indoor climate.

Shapes are hourly occupancy fractions (weekday and weekend) interpolated to the step; loads are
per square metre of floor area. Figures are typical of Shanghai commercial buildings (GB/T 51161
energy-use benchmarks): an office uses ≈ 80–110 kWh/m²·a of electricity, a lab about twice that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from energyhub.sites import Building, BuildingClass
from simulators.weather import Array, TimeGrid, ar1

_NIGHT = 0.02


@dataclass(frozen=True, slots=True)
class ClassProfile:
    """What a building class draws: a base load, an occupancy-driven load and thermal needs."""

    base_w_m2: float
    occupied_w_m2: float
    weekday: tuple[float, ...]
    weekend: tuple[float, ...]
    m2_per_person: float
    heat_w_m2_k: float
    cool_w_m2_k: float
    internal_to_cooling: float
    """Fraction of the electric load that ends up as heat the chillers must remove."""


def _hours(*spans: tuple[int, int, float], rest: float = _NIGHT) -> tuple[float, ...]:
    """24 hourly values: `rest`, overwritten by (first hour, last hour + 1, value) spans."""
    values = [rest] * 24
    for first, end, value in spans:
        values[first:end] = [value] * (end - first)
    return tuple(values)


PROFILES: dict[BuildingClass, ClassProfile] = {
    "office-A": ClassProfile(
        8.0, 30.0,
        _hours((7, 8, 0.2), (8, 9, 0.65), (9, 12, 0.95), (12, 13, 0.8), (13, 18, 0.95),
               (18, 19, 0.6), (19, 20, 0.35), (20, 22, 0.15)),
        _hours((9, 18, 0.12)),
        10.0, 0.9, 0.8, 0.35,
    ),
    "office-B": ClassProfile(
        6.0, 24.0,
        _hours((8, 9, 0.4), (9, 12, 0.85), (12, 13, 0.7), (13, 18, 0.85), (18, 19, 0.45),
               (19, 21, 0.15)),
        _hours((10, 17, 0.08)),
        12.0, 1.0, 0.75, 0.3,
    ),
    "lab": ClassProfile(
        38.0, 30.0,
        _hours((7, 8, 0.35), (8, 18, 0.9), (18, 20, 0.55), (20, 23, 0.3), rest=0.15),
        _hours((9, 18, 0.3), rest=0.12),
        25.0, 1.6, 1.2, 0.45,
    ),
    "data-center": ClassProfile(
        420.0, 15.0,
        _hours((8, 19, 0.3), rest=0.05),
        _hours((9, 18, 0.1), rest=0.05),
        200.0, 0.0, 0.6, 0.92,
    ),
    "hotel": ClassProfile(
        12.0, 22.0,
        _hours((0, 6, 0.6), (6, 7, 0.75), (7, 9, 0.9), (9, 12, 0.45), (12, 14, 0.55),
               (14, 17, 0.35), (17, 18, 0.6), (18, 23, 0.85), (23, 24, 0.7), rest=0.6),
        _hours((0, 7, 0.75), (7, 10, 0.95), (10, 17, 0.5), (17, 24, 0.9), rest=0.75),
        30.0, 1.4, 1.0, 0.3,
    ),
    "retail": ClassProfile(
        7.0, 42.0,
        _hours((9, 10, 0.4), (10, 21, 0.85), (21, 22, 0.5)),
        _hours((9, 10, 0.5), (10, 22, 1.0), (22, 23, 0.4)),
        8.0, 1.0, 1.1, 0.4,
    ),
}  # fmt: skip

HEATING_BALANCE_C = 15.0
COOLING_BALANCE_C = 22.0
"""Outdoor temperatures below / above which a building needs heating / cooling."""
LOAD_NOISE = 0.04
LOAD_MEMORY_MIN = 20.0
"""Load fluctuation: AR(1), this relative standard deviation and correlation time."""


@dataclass(frozen=True, slots=True)
class BuildingLoads:
    """A building's demands and indoor sensors, one value per step."""

    electric_kw: Array
    heat_kw: Array
    cooling_kw: Array
    occupancy: Array
    indoor_c: Array
    indoor_rh_pct: Array


def occupancy_fraction(profile: ClassProfile, grid: TimeGrid) -> Array:
    """Hourly shape, linearly interpolated at each step, weekday or weekend."""
    hours = grid.local_hours()
    points = np.arange(25)
    weekday = np.interp(hours, points, (*profile.weekday, profile.weekday[0]))
    weekend = np.interp(hours, points, (*profile.weekend, profile.weekend[0]))
    return np.where(grid.local_weekday() >= 5, weekend, weekday)


def building_loads(
    building: Building, grid: TimeGrid, outdoor_c: Array, rng: np.random.Generator
) -> BuildingLoads:
    """All demands of one building, vectorized over the grid."""
    profile = PROFILES[building.building_class]
    area = building.floor_area_m2
    occ = occupancy_fraction(profile, grid)
    wobble = 1.0 + ar1(rng, grid.steps, LOAD_NOISE, LOAD_MEMORY_MIN * 60 / grid.step_s)
    electric = area * (profile.base_w_m2 + profile.occupied_w_m2 * occ) / 1000.0 * wobble
    use = 0.4 + 0.6 * occ
    heat = area * profile.heat_w_m2_k * np.maximum(HEATING_BALANCE_C - outdoor_c, 0.0) * use
    envelope = area * profile.cool_w_m2_k * np.maximum(outdoor_c - COOLING_BALANCE_C, 0.0) * use
    cooling = envelope / 1000.0 + profile.internal_to_cooling * electric
    people = rng.poisson(area / profile.m2_per_person * occ).astype(np.float64)
    indoor = indoor_temperature_c(outdoor_c, occ, rng)
    humidity = np.clip(50.0 + 0.4 * (outdoor_c - 20.0) + ar1(rng, grid.steps, 3.0, 30.0), 25, 75)
    return BuildingLoads(electric, heat / 1000.0 * wobble, cooling, people, indoor, humidity)


def indoor_temperature_c(outdoor_c: Array, occupancy: Array, rng: np.random.Generator) -> Array:
    """Held near a seasonal set point while occupied, drifting toward outdoors when empty."""
    setpoint = np.clip(outdoor_c, 21.0, 25.0)
    drift = (outdoor_c - setpoint) * 0.25 * (1.0 - np.clip(occupancy * 2.0, 0.0, 1.0))
    return setpoint + drift + rng.normal(0.0, 0.2, size=outdoor_c.shape)
