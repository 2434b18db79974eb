"""Shanghai-like weather on a time grid: temperature, humidity, irradiance (clear and cloudy), wind.

Every function takes whole arrays (one value per step) and a numpy Generator, so a run is
vectorized and deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo

import numpy as np
from numpy.typing import NDArray

from energyhub.forecast.solar import (
    SHANGHAI_LATITUDE_DEG,
    SHANGHAI_LONGITUDE_DEG,
    cos_zenith_epoch,
    haurwitz_ghi_w_m2,
)
from energyhub.sites import SiteFile

Array = NDArray[np.float64]

LATITUDE_DEG = SHANGHAI_LATITUDE_DEG
LONGITUDE_DEG = SHANGHAI_LONGITUDE_DEG
"""Where the sun is placed when the site file gives no `location`; the climate is Shanghai's
wherever the site is."""

MONTHLY_MEAN_C = np.array([4.8, 6.6, 10.3, 15.6, 20.9, 24.7, 28.9, 28.6, 24.7, 19.8, 13.9, 7.6])
"""Shanghai monthly mean air temperature, 1991–2020 normals (China Meteorological Admin.)."""

MONTHLY_HUMIDITY_PCT = np.array([74, 73, 72, 71, 72, 79, 77, 78, 76, 71, 72, 71], dtype=float)
DIURNAL_AMPLITUDE_C = 3.5
"""Half the typical day–night swing; the daily minimum is near 05:00, the maximum near 14:00."""
WEATHER_NOISE_C = 2.5
WEATHER_MEMORY_H = 36.0
"""Synoptic variability: an AR(1) anomaly with this standard deviation and correlation time."""


@dataclass(frozen=True, slots=True)
class TimeGrid:
    """The simulated steps: step t covers [start + t·step, start + (t+1)·step)."""

    start: datetime
    step_s: float
    steps: int
    latitude_deg: float = LATITUDE_DEG
    longitude_deg: float = LONGITUDE_DEG
    """Where the sun is: the site file's `location` (for_site)."""

    @property
    def step_h(self) -> float:
        return self.step_s / 3600.0

    def epoch_s(self) -> Array:
        return self.start.timestamp() + np.arange(self.steps, dtype=np.float64) * self.step_s

    def for_site(self, site: SiteFile) -> TimeGrid:
        """The same steps on the site's clock (in_zone) and under its sun (its `location`)."""
        grid = self.in_zone(site.tz)
        if site.location is None:
            return grid
        place = site.location
        return replace(grid, latitude_deg=place.latitude_deg, longitude_deg=place.longitude_deg)

    def in_zone(self, tz: tzinfo) -> TimeGrid:
        """The same steps on the clock of `tz` (local hours and weekdays are read from `start`'s
        UTC offset, so a grid given a UTC start would keep UTC hours)."""
        return replace(self, start=self.start.astimezone(tz))

    def local_epoch_s(self) -> Array:
        """Each step's start on the wall clock of `start`'s time zone, as seconds since
        1970-01-01 00:00 local: its UTC offset at that step, so a day across a daylight-saving
        change keeps office hours at their clock time."""
        epoch = self.epoch_s()
        zone = self.start.tzinfo
        if zone is None or epoch.size == 0:
            return epoch
        changes = _offsets(zone, epoch[0], epoch[-1])
        offsets = np.full(epoch.shape, changes[0][1])
        for at, offset in changes[1:]:
            offsets[epoch >= at] = offset
        return np.asarray(epoch + offsets, dtype=np.float64)

    def local_hours(self) -> Array:
        """Local clock time in hours (fractional), for the site time zone of `start`."""
        return (self.local_epoch_s() % 86400.0) / 3600.0

    def local_weekday(self) -> NDArray[np.int64]:
        """Monday = 0 … Sunday = 6."""
        days = np.floor(self.local_epoch_s() / 86400.0).astype(np.int64)
        return (days + 3) % 7  # 1970-01-01 was a Thursday

    def day_of_year(self) -> Array:
        seconds = (
            self.epoch_s() - datetime(self.start.year, 1, 1, tzinfo=self.start.tzinfo).timestamp()
        )
        return (seconds / 86400.0) % 365.25


def _offsets(zone: tzinfo, first_s: float, last_s: float) -> list[tuple[float, float]]:
    """(from epoch second, UTC offset in seconds) over [first_s, last_s]: the offset at the start
    and every change after it, found hour by hour (zones change on the hour or half hour)."""

    def offset(at: float) -> float:
        found = datetime.fromtimestamp(at, zone).utcoffset() or timedelta(0)
        return found.total_seconds()

    changes = [(first_s, offset(first_s))]
    hour = float(np.floor(first_s / 3600.0) * 3600.0)
    while hour < last_s:
        hour += 3600.0
        now = offset(hour)
        if now != changes[-1][1]:
            lo, hi = hour - 3600.0, hour  # the change lies in (lo, hi]: to the quarter hour
            while hi - lo > 900.0:
                mid = lo + np.ceil((hi - lo) / 1800.0) * 900.0
                lo, hi = (mid, hi) if offset(mid) == changes[-1][1] else (lo, mid)
            changes.append((hi, now))
    return changes


def ar1(rng: np.random.Generator, steps: int, sigma: float, memory_steps: float) -> Array:
    """A stationary AR(1) series with standard deviation `sigma` and correlation time in steps."""
    from scipy.signal import lfilter  # on first use: importing scipy.signal takes ~1 s

    phi = float(np.exp(-1.0 / max(memory_steps, 1e-9)))
    shocks = rng.standard_normal(steps) * sigma * np.sqrt(1.0 - phi**2)
    shocks[0] = rng.standard_normal() * sigma
    return np.asarray(lfilter([1.0], [1.0, -phi], shocks), dtype=np.float64)


def _monthly(values: NDArray[np.float64], day_of_year: Array) -> Array:
    """Smooth interpolation of monthly normals (placed mid-month), cyclic over the year."""
    mid_month = (np.arange(12) + 0.5) * 365.25 / 12
    return np.interp(day_of_year, mid_month, values, period=365.25)


def outdoor_temperature_c(grid: TimeGrid, rng: np.random.Generator) -> Array:
    """Seasonal normal + diurnal cycle + a slowly varying weather anomaly."""
    seasonal = _monthly(MONTHLY_MEAN_C, grid.day_of_year())
    diurnal = DIURNAL_AMPLITUDE_C * np.cos(2 * np.pi * (grid.local_hours() - 14.0) / 24.0)
    anomaly = ar1(rng, grid.steps, WEATHER_NOISE_C, WEATHER_MEMORY_H / grid.step_h)
    return seasonal + diurnal + anomaly


def outdoor_humidity_pct(grid: TimeGrid, outdoor_c: Array, rng: np.random.Generator) -> Array:
    """Relative humidity: monthly normal, lower in the warm afternoon, with its own anomaly."""
    normal = _monthly(MONTHLY_HUMIDITY_PCT, grid.day_of_year())
    diurnal = -1.5 * (outdoor_c - _monthly(MONTHLY_MEAN_C, grid.day_of_year()))
    anomaly = ar1(rng, grid.steps, 6.0, 12.0 / grid.step_h)
    return np.clip(normal + diurnal + anomaly, 15.0, 100.0)


def cos_zenith(grid: TimeGrid) -> Array:
    """Cosine of the solar zenith angle at each step's start (negative at night)."""
    return cos_zenith_epoch(grid.epoch_s(), grid.latitude_deg, grid.longitude_deg)


def clear_sky_ghi_w_m2(grid: TimeGrid) -> Array:
    """Haurwitz clear-sky global horizontal irradiance; exactly zero when the sun is down."""
    return haurwitz_ghi_w_m2(cos_zenith(grid))


def clearness(grid: TimeGrid, rng: np.random.Generator) -> Array:
    """Fraction of clear-sky irradiance that reaches the ground: passing clouds over a daily sky."""
    days = np.floor((grid.epoch_s() - grid.epoch_s()[0]) / 86400.0).astype(np.int64)
    daily: Array = rng.beta(4.0, 2.0, size=int(days[-1]) + 1 if grid.steps else 1)[days]
    passing = ar1(rng, grid.steps, 0.15, 0.5 / grid.step_h)
    return np.clip(daily + passing, 0.05, 1.0)


def pv_power_kw(peak_kw: float, ghi_w_m2: Array, outdoor_c: Array) -> Array:
    """AC output of a PV array: irradiance / 1000 W/m², a 14 % system loss, cell-heat derating."""
    cell_c = outdoor_c + 0.03 * ghi_w_m2
    derate = 1.0 - 0.004 * np.maximum(cell_c - 25.0, 0.0)
    return np.clip(peak_kw * ghi_w_m2 / 1000.0 * 0.86 * derate, 0.0, peak_kw)


def wind_power_kw(peak_kw: float, grid: TimeGrid, rng: np.random.Generator) -> Array:
    """A turbine's output: a gusty AR(1) wind speed through a cubic power curve (3–12–25 m/s)."""
    speed = np.maximum(5.5 + ar1(rng, grid.steps, 2.5, 6.0 / grid.step_h), 0.0)
    ramp = np.clip((speed**3 - 3.0**3) / (12.0**3 - 3.0**3), 0.0, 1.0)
    return np.where(speed < 25.0, peak_kw * ramp, 0.0)
