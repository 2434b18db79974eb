"""Solar geometry and clear-sky irradiance, one implementation for the forecasts and the simulator.

NOAA's general solar position approximations (declination and equation of time as Fourier
series in the fractional year) and the Haurwitz clear-sky model; times are UTC epoch seconds so
that the simulator's arrays and the forecasts' pandas indexes share the same arithmetic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:  # the simulator uses the epoch functions without importing pandas
    import pandas as pd

Array = NDArray[np.float64]

SHANGHAI_LATITUDE_DEG = 31.23
SHANGHAI_LONGITUDE_DEG = 121.47
"""People's Square: site files carry no coordinates; the settings may give a site's own."""
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


def clear_sky_ghi_w_m2(index: pd.DatetimeIndex, latitude_deg: float, longitude_deg: float) -> Array:
    """Clear-sky GHI at the middle of each step of a regular index (the step's mean, nearly)."""
    middle = index + (index[1] - index[0]) / 2 if len(index) > 1 else index
    return haurwitz_ghi_w_m2(cos_zenith(middle, latitude_deg, longitude_deg))
