"""Forecasts on synthetic histories whose profile, temperature sensitivity and gaps are known."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from energyhub.forecast.profile import (
    DEFAULT_PERFORMANCE_RATIO,
    ForecastError,
    ForecastOptions,
    History,
    clean_history,
    fit_degree_terms,
    fit_profile,
    forecast_demand,
    forecast_outdoor,
    forecast_pv,
    nmae,
    seasonal_naive,
)
from energyhub.forecast.solar import clear_sky_ghi_w_m2, cos_zenith
from simulators.weather import TimeGrid
from simulators.weather import cos_zenith as simulator_cos_zenith

TZ = ZoneInfo("Asia/Shanghai")
STEP = pd.Timedelta(minutes=15)
ORIGIN = pd.Timestamp("2025-01-06", tz=TZ).tz_convert("UTC")  # a Monday, local midnight
HEATING_KW_PER_K, HEATING_BALANCE_C = 30.0, 14.0
COOLING_KW_PER_K, COOLING_BALANCE_C = 15.0, 24.0


def grid(days: float, start: pd.Timestamp = ORIGIN) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=int(days * 96), freq=STEP, name="ts")


def profile_kw(index: pd.DatetimeIndex, weekday_step_kw: float = 0.0) -> np.ndarray:
    """Workdays 08–18 at 600 kW over a 200 kW base; optionally + weekday × `weekday_step_kw`."""
    local = index.tz_convert(TZ)
    hours = np.asarray(local.hour + local.minute / 60)
    day = np.asarray(local.day_of_week)
    working = (day < 5) & (hours >= 8) & (hours < 18)
    return np.where(working, 800.0, 200.0) + weekday_step_kw * day


def outdoor_c(index: pd.DatetimeIndex, seed: int = 1) -> np.ndarray:
    """A diurnal cycle on a slow random walk that crosses both balance points."""
    local = index.tz_convert(TZ)
    hours = np.asarray(local.hour + local.minute / 60)
    drift = np.cumsum(np.random.default_rng(seed).normal(0.0, 0.15, len(index)))
    return (
        19.0
        + 8.0 * np.sin(2 * np.pi * np.arange(len(index)) / (96 * 9))
        + drift * 0.3
        + (4.0 * np.sin(2 * np.pi * (hours - 9) / 24))
    )


def demand_kw(index: pd.DatetimeIndex, temps: np.ndarray, noise_kw: float = 5.0) -> pd.Series:
    heating = HEATING_KW_PER_K * np.maximum(HEATING_BALANCE_C - temps, 0.0)
    cooling = COOLING_KW_PER_K * np.maximum(temps - COOLING_BALANCE_C, 0.0)
    noise = np.random.default_rng(7).normal(0.0, noise_kw, len(index))
    return pd.Series(profile_kw(index) + heating + cooling + noise, index=index)


def test_profile_and_temperature_sensitivity_are_recovered() -> None:
    index = grid(29)
    temps = outdoor_c(index)
    load = demand_kw(index, temps)
    now = index[28 * 96]
    past, future = index[index < now], index[index >= now]
    model = fit_profile(load[past], TZ, pd.Series(temps, index)[past], weekdays=False)
    d = model.degrees
    assert (d.heating_balance_c, d.cooling_balance_c) == (HEATING_BALANCE_C, COOLING_BALANCE_C)
    assert d.heating_kw_per_k == pytest.approx(HEATING_KW_PER_K, rel=0.05)
    assert d.cooling_kw_per_k == pytest.approx(COOLING_KW_PER_K, rel=0.05)
    result = forecast_demand(
        History(load[past], "b/main"),
        future,
        column="b:electricity_kw",
        now=now,
        tz=TZ,
        outdoor=(pd.Series(temps[: len(past)], past), pd.Series(temps[len(past) :], future)),
    )
    ours = nmae(load[future], result.values)
    naive = nmae(load[future], seasonal_naive(load, future, timedelta(days=7)))
    assert ours < 0.02 and ours < naive / 2
    assert "kW/K below 14 °C" in result.method and "kW/K above 24 °C" in result.method
    assert result.notes == ()


def test_no_degree_terms_without_temperature_dependence() -> None:
    index = grid(14)
    load = pd.Series(profile_kw(index), index=index) + np.random.default_rng(3).normal(0, 5, 1344)
    local = index.tz_convert(TZ)
    slot = np.asarray(local.hour * 4 + local.minute // 15)
    groups = np.asarray((local.day_of_week >= 5) * 96 + slot, dtype=np.int64)
    terms = fit_degree_terms(load.to_numpy(), groups, outdoor_c(index))
    assert terms.heating_kw_per_k == terms.cooling_kw_per_k == 0.0


def test_two_days_fit_no_degree_terms_from_the_daily_cycle() -> None:
    """An office's load and the outdoor temperature both rise by day: from a Friday and a
    Saturday (the demo's two days of history) nothing tells the building's cycle from the
    weather's, so no heating or cooling term is fitted, and the forecast stays within what the
    meter has shown (a 540 kW/K term once forecast three times its highest reading)."""
    start = pd.Timestamp("2025-01-10 01:15", tz=TZ).tz_convert("UTC")  # a Friday
    index = grid(2, start)
    temps = outdoor_c(index)
    load = pd.Series(profile_kw(index), index=index) + np.random.default_rng(5).normal(0, 20, 192)
    past_c = pd.Series(temps, index)
    model = fit_profile(load, TZ, past_c, weekdays=False)
    assert model.degrees.heating_kw_per_k == model.degrees.cooling_kw_per_k == 0.0
    future = grid(1, index[-1] + STEP)
    result = forecast_demand(
        History(load, "b/main"), future, column="b:electricity_kw", now=future[0], tz=TZ,
        outdoor=(past_c, pd.Series(outdoor_c(future, seed=2) - 6.0, future)),
    )  # fmt: skip
    assert result.values.max() <= load.max() * 1.1


def test_seven_day_types_when_weekdays_differ() -> None:
    index = grid(36)
    load = pd.Series(profile_kw(index, weekday_step_kw=60.0), index=index)
    now = index[35 * 96]
    past, future = index[index < now], index[index >= now]
    result = forecast_demand(
        History(load[past], "b/main"), future, column="b:electricity_kw", now=now, tz=TZ
    )
    assert result.method.startswith("weekday × 15-min profile")
    assert nmae(load[future], result.values) < 1e-9
    short = forecast_demand(
        History(load[past][-10 * 96 :], "b/main"), future, column="c", now=now, tz=TZ
    )
    assert short.method.startswith("workday/weekend × 15-min profile")  # too little to compare


def test_the_recent_level_shifts_near_steps_most() -> None:
    index = grid(15)
    load = pd.Series(profile_kw(index), index=index)
    now = index[14 * 96]
    load[(index >= now - pd.Timedelta(hours=24)) & (index < now)] += 100.0
    past, future = index[index < now], index[index >= now]
    result = forecast_demand(History(load[past], "b/main"), future, column="c", now=now, tz=TZ)
    shift = result.values - profile_kw(future)
    # the raised day is a Sunday, one of the 4 weekend days the weekend profile averages: its
    # residual is 75 kW; Monday's profile is untouched, so the forecast is shifted by 75 kW
    assert shift.iloc[0] == pytest.approx(75.0)
    assert shift.iloc[-1] == pytest.approx(75.0 * np.exp(-(95 * 0.25) / 24))
    assert "recent level +75 kW over 24 h" in result.method


def test_short_gaps_are_interpolated_and_long_ones_left_out() -> None:
    index = grid(7)
    values = pd.Series(profile_kw(index), index=index)
    values.iloc[100:103] = np.nan  # 45 min
    values.iloc[300:310] = np.nan  # 2.5 h
    now = index[-1] + STEP
    cleaned, notes = clean_history(
        History(values, "b01/main"), "b01:electricity_kw", now, ForecastOptions()
    )
    assert cleaned.iloc[100:103].notna().all() and cleaned.iloc[300:310].isna().all()
    assert cleaned.iloc[101] == pytest.approx((values.iloc[99] + values.iloc[103]) / 2)
    assert notes == [
        "b01/main: 1 gap(s) of up to 1 h filled by linear interpolation",
        "b01/main: 1 gap(s) longer than 1 h (2.5 h in all) left out of the fit",
    ]


def test_a_silent_meter_is_refused_by_name() -> None:
    index = grid(7)
    values = pd.Series(profile_kw(index), index=index)
    values.iloc[-40:] = np.nan  # the last 10 h
    with pytest.raises(ForecastError) as caught:
        forecast_demand(
            History(values, "b01/main"), grid(1, index[-1] + STEP), column="b01:electricity_kw",
            now=index[-1] + STEP, tz=TZ,
        )  # fmt: skip
    assert str(caught.value) == (
        f"b01/main: last reading {index[-41].isoformat()}, silent for 10 h (limit 6 h): cannot "
        "forecast b01:electricity_kw; check the meter and its gateway"
    )


def test_a_nearly_empty_history_is_refused_by_name() -> None:
    index = grid(7)
    values = pd.Series(np.nan, index=index)
    values.iloc[-20:] = 100.0
    with pytest.raises(ForecastError, match=r"^b01/heat: only 5 h of readings in the last 168 h"):
        clean_history(
            History(values, "b01/heat"), "b01:heat_kw", index[-1] + STEP, ForecastOptions()
        )


def test_an_hourly_meter_covers_its_hours_on_a_15_min_grid() -> None:
    """A meter read once an hour (a utility's interval data, CityLearn's homes) fills one
    15-min step in four; the three between are short gaps, interpolated, and its 36 h of
    readings are 36 h of history, not 9 h: it was refused as silent."""
    index = grid(1.5)
    values = pd.Series(profile_kw(index), index=index)
    values[index.minute != 0] = np.nan
    now = index[-1] + STEP
    cleaned, notes = clean_history(
        History(values, "home2/main"), "home2:electricity_kw", now, ForecastOptions()
    )
    assert cleaned.iloc[4:-4].notna().all()
    assert notes[0] == "home2/main: 35 gap(s) of up to 1 h filled by linear interpolation"
    forecast = forecast_demand(
        History(values, "home2/main"), grid(1, now), column="home2:electricity_kw", now=now, tz=TZ
    )
    assert forecast.values.notna().all() and (forecast.values >= 0).all()


def test_sparse_readings_still_cover_only_their_steps() -> None:
    """Readings 2 h apart leave gaps longer than the interpolated ones: 18 readings over 36 h
    are 4.5 h of readings, refused."""
    index = grid(1.5)
    values = pd.Series(profile_kw(index), index=index)
    values[(index.minute != 0) | (index.hour % 2 == 1)] = np.nan
    with pytest.raises(ForecastError, match=r"^b/m: only 4.5 h of readings in the last 36 h"):
        clean_history(History(values, "b/m"), "c", index[-1] + STEP, ForecastOptions())


def test_a_short_silence_is_noted() -> None:
    index = grid(3)
    values = pd.Series(profile_kw(index), index=index)
    values.iloc[-3:] = np.nan
    _, notes = clean_history(History(values, "b/m"), "c", index[-1] + STEP, ForecastOptions())
    assert notes == [
        "b/m: no reading for the last 0.75 h; the recent level comes from earlier readings"
    ]


def test_the_simulator_uses_the_same_solar_geometry() -> None:
    start = datetime(2025, 6, 21, tzinfo=TZ)
    ours = cos_zenith(pd.date_range(start, periods=96 * 3, freq=STEP), 31.23, 121.47)
    theirs = simulator_cos_zenith(TimeGrid(start, 900.0, 96 * 3))
    assert np.max(np.abs(ours - theirs)) < 1e-12  # one implementation: forecast/solar.py


def test_clear_sky_is_zero_at_night_and_peaks_near_solar_noon() -> None:
    day = pd.date_range(pd.Timestamp("2025-06-21", tz=TZ), periods=96, freq=STEP)
    ghi = clear_sky_ghi_w_m2(day, 31.23, 121.47)
    local_hours = np.asarray(day.hour + day.minute / 60)
    assert (ghi[(local_hours < 4.5) | (local_hours > 19.5)] == 0).all()
    assert 11.5 <= local_hours[np.argmax(ghi)] <= 12.25
    assert 950 < ghi.max() < 1050


def test_pv_is_clear_sky_times_the_measured_ratio() -> None:
    index = grid(8)
    options = ForecastOptions()
    clear = clear_sky_ghi_w_m2(index, options.latitude_deg, options.longitude_deg) / 1000 * 400
    morning_shade = np.where(np.asarray(index.tz_convert(TZ).hour) < 9, 0.5, 1.0)
    measured = pd.Series(0.8 * clear * morning_shade, index=index)
    now = index[7 * 96]
    future = index[index >= now]
    result = forecast_pv(
        History(measured[index < now], "b01/pv"), future, column="b01-pv:available_kw",
        peak_kw=400.0, now=now,
    )  # fmt: skip
    assert nmae(measured[future], result.values) < 0.01  # the shade by time of day is learnt
    assert result.values.max() <= 400.0 and (result.values >= 0).all()
    assert result.notes == ()


def test_pv_without_a_meter_uses_the_default_ratio() -> None:
    future = grid(1, ORIGIN + pd.Timedelta(days=7))
    options = ForecastOptions()
    result = forecast_pv(None, future, column="x:available_kw", peak_kw=100.0, now=future[0])
    clear = clear_sky_ghi_w_m2(future, options.latitude_deg, options.longitude_deg) / 10
    assert result.values.to_numpy() == pytest.approx(clear * DEFAULT_PERFORMANCE_RATIO)
    assert result.notes == (
        "x:available_kw: no PV meter; clear sky × a default performance ratio of 0.75",
    )


def test_pv_with_a_silent_meter_falls_back_with_a_note() -> None:
    index = grid(3)
    values = pd.Series(np.nan, index=index)
    values.iloc[:96] = 50.0
    result = forecast_pv(
        History(values, "b01/pv"), grid(1, index[-1] + STEP), column="b01-pv:available_kw",
        peak_kw=100.0, now=index[-1] + STEP,
    )  # fmt: skip
    assert result.notes[0].startswith("b01/pv: last reading")
    assert result.notes[0].endswith("clear sky × a default ratio of 0.75 instead")


def test_outdoor_forecast_keeps_the_daily_shape_and_recent_level() -> None:
    index = grid(5)
    local = index.tz_convert(TZ)
    temps = pd.Series(20 + 5 * np.sin(2 * np.pi * (np.asarray(local.hour) - 9) / 24), index=index)
    now = index[4 * 96]
    temps[index >= now - pd.Timedelta(hours=24)] += 3.0
    future = index[index >= now]
    result = forecast_outdoor(History(temps[index < now], "p/outdoor"), future, now=now, tz=TZ)
    expected = (
        temps[future] - 3.0 + 3.0 * (2 / 3) * np.exp(-np.arange(96) * 0.25 / 24)
    )  # the last 3 days' shape holds one warm day; the recent level adds the rest, fading
    assert result.values.to_numpy() == pytest.approx(expected.to_numpy() + 1.0, abs=0.05)


def test_nmae_and_seasonal_naive() -> None:
    index = grid(2)
    values = pd.Series(np.arange(192, dtype=float), index=index)
    naive = seasonal_naive(values, index[96:], timedelta(days=1))
    assert (naive.to_numpy() == np.arange(96)).all()
    assert nmae(np.array([1.0, 2.0, np.nan]), np.array([2.0, 2.0, 5.0])) == pytest.approx(1 / 3)
