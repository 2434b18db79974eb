"""PV as clear sky × a clear-sky index: the envelope learnt from the meter, the index from the
weather forecast or from recent days, the plane of the array when it is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from energyhub.forecast.gbm import PvSite
from energyhub.forecast.profile import ForecastError
from energyhub.forecast.pv import cloud_index, fit_pv_index
from energyhub.forecast.solar import clear_sky_ghi_w_m2, clear_sky_poa_w_m2

LAT, LON = 31.23, 121.47
START = pd.Timestamp("2025-05-01", tz="Asia/Shanghai").tz_convert("UTC")
EAST = (30.0, 90.0)
"""An east-facing array: its output peaks in the morning, which horizontal irradiance hides."""


def east_array(days: int, daily_index: list[float], peak_kw: float = 100.0) -> pd.Series:
    """An east-facing array at 80 % of its clear-sky plane irradiance × each day's index."""
    index = pd.date_range(START, periods=96 * days, freq="15min")
    poa = clear_sky_poa_w_m2(index, LAT, LON, *EAST)
    day = np.asarray((index - index[0]) // pd.Timedelta(days=1))
    return pd.Series(poa / 1000 * peak_kw * 0.8 * np.asarray(daily_index)[day], index=index)


def test_the_plane_of_a_flat_array_is_the_horizontal() -> None:
    index = pd.date_range(START, periods=96, freq="15min")
    flat = clear_sky_poa_w_m2(index, LAT, LON, 0.0, 180.0)
    assert np.allclose(flat, clear_sky_ghi_w_m2(index, LAT, LON), atol=1e-6)
    site = PvSite(100.0, LAT, LON, tilt_deg=30.0, azimuth_deg=90.0)
    east = site.clear_w_m2(index)
    assert index[np.argmax(east)] < index[np.argmax(flat)]  # the east plane peaks earlier


def test_the_envelope_learns_an_east_facing_array_from_horizontal_clear_sky() -> None:
    history = east_array(21, [1.0, 1.0, 0.3] * 7)
    site = PvSite(100.0, LAT, LON)  # orientation not given
    steps = pd.date_range(history.index[-1] + pd.Timedelta(minutes=15), periods=96, freq="15min")
    clear = clear_sky_ghi_w_m2(steps, LAT, LON)
    weather = pd.DataFrame({"ghi_w_m2": clear}, index=steps)  # a clear day forecast
    model = fit_pv_index(history, site, weather)
    forecast = model.predict(history, steps)
    truth = clear_sky_poa_w_m2(steps, LAT, LON, *EAST) / 1000 * 100.0 * 0.8
    assert np.abs(forecast - truth).sum() / truth.sum() < 0.05
    assert steps[np.argmax(forecast)] == steps[np.argmax(truth)]


def test_without_weather_the_index_is_the_recent_median_not_yesterday() -> None:
    history = east_array(14, [1.0] * 13 + [0.2])  # a clear fortnight, then a dull day
    model = fit_pv_index(history, PvSite(100.0, LAT, LON))
    steps = pd.date_range(history.index[-1] + pd.Timedelta(minutes=15), periods=96, freq="15min")
    forecast = model.predict(history, steps)
    clear_day = clear_sky_poa_w_m2(steps, LAT, LON, *EAST) / 1000 * 100.0 * 0.8
    assert forecast.sum() > 0.9 * clear_day.sum()


def test_the_forecast_is_zero_at_night_never_negative_never_above_peak() -> None:
    history = east_array(10, [1.2] * 10, peak_kw=100.0).clip(upper=100.0)
    history.iloc[::7] = -3.0  # inverters draw a little at night and report it as negative
    site = PvSite(80.0, LAT, LON)  # a peak below what the history shows
    steps = pd.date_range(history.index[-1] + pd.Timedelta(minutes=15), periods=96, freq="15min")
    forecast = fit_pv_index(history, site).predict(history, steps)
    night = clear_sky_ghi_w_m2(steps, LAT, LON) == 0
    assert (forecast[night] == 0).all()
    assert forecast.min() >= 0.0 and forecast.max() <= 80.0 and forecast.max() > 40.0


def test_cloud_cover_alone_lowers_the_forecast_by_kasten_czeplak() -> None:
    assert cloud_index(np.array([0.0, 100.0])) == pytest.approx([1.0, 0.25])
    history = east_array(10, [1.0] * 10)
    site = PvSite(100.0, LAT, LON)
    steps = pd.date_range(history.index[-1] + pd.Timedelta(minutes=15), periods=96, freq="15min")
    totals = []
    for cover in (0.0, 100.0):
        weather = pd.DataFrame({"cloud_cover_pct": np.full(96, cover)}, index=steps)
        totals.append(fit_pv_index(history, site, weather).predict(history, steps).sum())
    assert totals[1] == pytest.approx(0.25 * totals[0], rel=0.02)


def test_the_meter_s_response_to_the_forecast_index_is_learnt_from_history() -> None:
    """A forecast that overstates the sun (the meter makes index² of it) is mapped, not copied."""
    rng = np.random.default_rng(3)
    forecast_index = rng.uniform(0.2, 1.0, 21)
    history = east_array(21, list(forecast_index**2))
    index = pd.DatetimeIndex(history.index)
    day = np.asarray((index - index[0]) // pd.Timedelta(days=1))
    steps = pd.date_range(index[-1] + pd.Timedelta(minutes=15), periods=96, freq="15min")
    whole = index.append(steps)
    ghi = clear_sky_ghi_w_m2(whole, LAT, LON) * np.append(forecast_index[day], np.full(96, 0.5))
    weather = pd.DataFrame({"ghi_w_m2": ghi}, index=whole)
    forecast = fit_pv_index(history, PvSite(100.0, LAT, LON), weather).predict(history, steps)
    clear_day = clear_sky_poa_w_m2(steps, LAT, LON, *EAST) / 1000 * 100.0 * 0.8
    assert forecast.sum() / clear_day.sum() == pytest.approx(0.25, abs=0.05)


def test_a_history_without_daylight_is_refused_with_a_reason() -> None:
    index = pd.date_range(START, periods=96 * 3, freq="15min")
    night_only = pd.Series(np.nan, index=index)
    night_only[clear_sky_ghi_w_m2(index, LAT, LON) == 0] = 0.0
    with pytest.raises(ForecastError, match="no daylight readings"):
        fit_pv_index(night_only, PvSite(100.0, LAT, LON))
