"""Solar geometry and clear-sky irradiance, one module for the forecasts and the simulator.

Forecasts: pvlib's NREL SPA sun position and Ineichen clear sky with the climatological Linke
turbidity at the site (shipped with pvlib, no network), transposed to the array's plane when its
tilt and azimuth are known. The simulator's weather: NOAA's general solar position
approximations (declination and equation of time as Fourier series in the fractional year) and
the Haurwitz clear-sky model on UTC epoch seconds, vectorized without pandas; the forecasts
do not assume the simulator's physics.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:  # the simulator uses the epoch functions without importing pandas
    import pandas as pd

Array = NDArray[np.float64]

SHANGHAI_LATITUDE_DEG = 31.23
SHANGHAI_LONGITUDE_DEG = 121.47
"""People's Square: where the sun is placed unless the site file's `location` or the settings
say otherwise."""
SOLAR_TIME_TOLERANCE_H = 3.5
"""How far a site's standard time may be from the solar time of the configured longitude before
the coordinates are taken to be another place's: one time zone spans up to about 3 h of solar
time (China's UTC+8 from Kashgar, 76° E, to 135° E)."""
HAURWITZ_W_M2 = 1098.0
"""Haurwitz clear-sky model: GHI = 1098 · cos z · exp(−0.059 / cos z)."""
_DAY_S = 86400.0
_YEAR_DAYS = 365.0


def _fractional_year(epoch_s: Array) -> tuple[Array, Array]:
    """NOAA's fractional year γ (radians) and the UTC hour of day at each time."""
    seconds = np.floor(np.asarray(epoch_s, dtype=np.float64)).astype("datetime64[s]")
    days = seconds.astype("datetime64[D]")
    day_of_year = (days - days.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.float64)
    utc_hours = (np.asarray(epoch_s, dtype=np.float64) % _DAY_S) / 3600.0
    gamma = 2 * np.pi * (day_of_year + (utc_hours - 12.0) / 24.0) / _YEAR_DAYS
    return np.asarray(gamma, dtype=np.float64), utc_hours


def cos_zenith_epoch(epoch_s: Array, latitude_deg: float, longitude_deg: float) -> Array:
    """Cosine of the solar zenith angle at UTC epoch seconds (negative at night)."""
    gamma, utc_hours = _fractional_year(epoch_s)
    declination = (
        0.006918
        - 0.399912 * np.cos(gamma)
        + 0.070257 * np.sin(gamma)
        - 0.006758 * np.cos(2 * gamma)
        + 0.000907 * np.sin(2 * gamma)
        - 0.002697 * np.cos(3 * gamma)
        + 0.00148 * np.sin(3 * gamma)
    )
    equation_of_time_min = 229.18 * (
        0.000075
        + 0.001868 * np.cos(gamma)
        - 0.032077 * np.sin(gamma)
        - 0.014615 * np.cos(2 * gamma)
        - 0.040849 * np.sin(2 * gamma)
    )
    solar_hours = utc_hours + (4.0 * longitude_deg + equation_of_time_min) / 60.0
    hour_angle = np.radians(15.0 * (solar_hours - 12.0))
    lat = np.radians(latitude_deg)
    return np.asarray(
        np.sin(lat) * np.sin(declination) + np.cos(lat) * np.cos(declination) * np.cos(hour_angle),
        dtype=np.float64,
    )


def haurwitz_ghi_w_m2(cos_z: Array) -> Array:
    """Haurwitz clear-sky global horizontal irradiance; exactly zero when the sun is down."""
    ghi = np.zeros(len(cos_z))
    up = cos_z > 0.0
    ghi[up] = HAURWITZ_W_M2 * cos_z[up] * np.exp(-0.059 / cos_z[up])
    return ghi


def epoch_seconds(index: pd.DatetimeIndex) -> Array:
    """UTC epoch seconds of a tz-aware index."""
    utc = index.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[ns]")
    return np.asarray(utc.astype(np.int64), dtype=np.float64) / 1e9


def cos_zenith(index: pd.DatetimeIndex, latitude_deg: float, longitude_deg: float) -> Array:
    """Cosine of the solar zenith angle at each time of a tz-aware index."""
    return cos_zenith_epoch(epoch_seconds(index), latitude_deg, longitude_deg)


def _clear_at(
    middle: pd.DatetimeIndex,
    latitude_deg: float,
    longitude_deg: float,
    plane: tuple[float, float] | None,
) -> tuple[Array, Array]:
    """Clear-sky (GHI, plane-of-array) irradiance at the given times."""
    import pvlib  # on first use: ~1.5 s import

    location = pvlib.location.Location(latitude_deg, longitude_deg)
    with warnings.catch_warnings():  # pvlib 0.16 reads DatetimeIndex.dayofyear (pandas warns)
        warnings.filterwarnings("ignore", message=".*dayofyear.*")
        sun = location.get_solarposition(middle)
        sky = location.get_clearsky(middle, model="ineichen", solar_position=sun)
    ghi = np.asarray(sky["ghi"].to_numpy(dtype=float), dtype=np.float64)
    if plane is None:
        return ghi, ghi
    poa = pvlib.irradiance.get_total_irradiance(
        plane[0], plane[1], sun["apparent_zenith"], sun["azimuth"],
        sky["dni"], sky["ghi"], sky["dhi"], model="isotropic",
    )["poa_global"]  # fmt: skip
    return ghi, np.asarray(np.nan_to_num(poa.to_numpy(dtype=float)), dtype=np.float64)


@lru_cache(maxsize=4096)
def _clear_day(
    latitude_deg: float,
    longitude_deg: float,
    plane: tuple[float, float] | None,
    step_s: int,
    day: int,
) -> tuple[Array, Array]:
    """Clear sky at the middle of each step of one UTC day (days since the epoch)."""
    import pandas as pd

    start = pd.Timestamp(day * _DAY_S + step_s / 2, unit="s", tz="UTC")
    middle = pd.date_range(start, periods=86400 // step_s, freq=pd.Timedelta(seconds=step_s))
    return _clear_at(middle, latitude_deg, longitude_deg, plane)


def _clear_sky(
    index: pd.DatetimeIndex,
    latitude_deg: float,
    longitude_deg: float,
    plane: tuple[float, float] | None,
) -> tuple[Array, Array]:
    """Both clear-sky irradiances at the middle of each step of a regular index.

    Steps that divide a UTC day are computed a day at a time and cached (a backtest asks for
    the same days again and again); other grids are computed as they come.
    """
    if len(index) == 0:
        return np.zeros(0), np.zeros(0)
    epoch = np.round(epoch_seconds(index)).astype(np.int64)
    step_s = int(epoch[1] - epoch[0]) if len(epoch) > 1 else 0
    if step_s <= 0 or 86400 % step_s or np.any(epoch % step_s):
        import pandas as pd

        middle = index + pd.Timedelta(seconds=step_s / 2)
        return _clear_at(middle.tz_convert("UTC"), latitude_deg, longitude_deg, plane)
    days, slots = epoch // 86400, (epoch % 86400) // step_s
    ghi, poa = np.empty(len(index)), np.empty(len(index))
    for day in np.unique(days).tolist():
        mask = days == day
        day_ghi, day_poa = _clear_day(latitude_deg, longitude_deg, plane, step_s, int(day))
        ghi[mask], poa[mask] = day_ghi[slots[mask]], day_poa[slots[mask]]
    return ghi, poa


def clear_sky_ghi_w_m2(index: pd.DatetimeIndex, latitude_deg: float, longitude_deg: float) -> Array:
    """Clear-sky global horizontal irradiance at the middle of each step (Ineichen, pvlib)."""
    return _clear_sky(index, latitude_deg, longitude_deg, None)[0]


def clear_sky_poa_w_m2(
    index: pd.DatetimeIndex,
    latitude_deg: float,
    longitude_deg: float,
    tilt_deg: float,
    azimuth_deg: float,
) -> Array:
    """Clear-sky irradiance on a plane (tilt from horizontal, azimuth clockwise from north)."""
    return _clear_sky(index, latitude_deg, longitude_deg, (tilt_deg, azimuth_deg))[1]


def _utc_offset(offset: timedelta) -> str:
    minutes = round(offset.total_seconds() / 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def far_sun_note(
    label: str, latitude_deg: float, longitude_deg: float, tz: ZoneInfo, at: datetime
) -> str | None:
    """A note when the coordinates the clear sky is computed for can't be the site's: their
    solar time is more than SOLAR_TIME_TOLERANCE_H from the site's standard time (the default,
    Shanghai, for a site in Colorado puts noon at midnight), else None."""
    local = at.astimezone(tz)
    standard = (local.utcoffset() or timedelta(0)) - (local.dst() or timedelta(0))
    apart_h = (longitude_deg / 15.0 - standard.total_seconds() / 3600 + 12.0) % 24.0 - 12.0
    if abs(apart_h) <= SOLAR_TIME_TOLERANCE_H:
        return None
    north = f"{abs(latitude_deg):g}° {'N' if latitude_deg >= 0 else 'S'}"
    east = f"{abs(longitude_deg):g}° {'E' if longitude_deg >= 0 else 'W'}"
    return (
        f"{label}: the sun is placed at {north}, {east} (the site file's `location`, else "
        "ENERGYHUB_SCHEDULER_LATITUDE_DEG and ENERGYHUB_SCHEDULER_LONGITUDE_DEG), "
        f"{abs(apart_h):.0f} h of solar time from the site's time zone {tz.key} "
        f"({_utc_offset(standard)}): the clear sky is another place's; give the site's "
        "coordinates as `location: {latitude_deg: …, longitude_deg: …}` in its site file"
    )
