"""Intraday correction and small-sample bands: what is learnt from held-out errors, and how a
re-plan's forecast moves with the error seen so far today."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from energyhub.forecast.bands import (
    FULL_SAMPLE_DAYS,
    SMALL_SAMPLE_WIDENING,
    coverage,
    error_quantiles,
    small_sample_widening,
)
from energyhub.forecast.intraday import (
    MIN_BAND_SCALE,
    NO_PERSISTENCE,
    Persistence,
    fit_persistence,
    intraday,
    intraday_band,
)

TZ = ZoneInfo("Asia/Shanghai")


def _days(count: int) -> pd.DatetimeIndex:
    start = pd.Timestamp("2025-03-03", tz=TZ).tz_convert("UTC")
    return pd.date_range(start, periods=96 * count, freq="15min")


def test_a_day_long_offset_is_learnt_as_persistent_and_narrows_the_near_band() -> None:
    index = _days(7)
    rng = np.random.default_rng(5)
    offsets = np.repeat(rng.normal(0.0, 10.0, 7), 96)  # each day busier or quieter all day
    actual = 100.0 + offsets + rng.normal(0.0, 1.0, len(index))
    forecast = np.full(len(index), 100.0)
    band = error_quantiles(index, actual, forecast, days=7)
    learnt = fit_persistence(index, actual, forecast, TZ, band)
    assert learnt.weight > 0.9 and learnt.decay_per_h >= 0.95
    assert learnt.band_scale[0] == MIN_BAND_SCALE  # the offset explains the day's error
    assert all(MIN_BAND_SCALE <= s <= 1.0 for s in learnt.band_scale)


def test_errors_that_do_not_persist_teach_no_correction() -> None:
    index = _days(7)
    rng = np.random.default_rng(6)
    actual = 100.0 + rng.normal(0.0, 5.0, len(index))  # independent from step to step
    forecast = np.full(len(index), 100.0)
    band = error_quantiles(index, actual, forecast, days=7)
    learnt = fit_persistence(index, actual, forecast, TZ, band)
    assert learnt.weight < 0.15
    assert fit_persistence(index[:20], actual[:20], forecast[:20], TZ, band) == NO_PERSISTENCE


def test_a_replan_moves_the_rest_of_the_day_by_the_error_so_far() -> None:
    index = _days(3)
    metered = pd.Series(100.0, index=index)
    today = index >= index[96 * 2]
    metered[today] = 120.0  # the day has run 20 % above the forecast since midnight

    def flat(known: pd.Series, steps: pd.DatetimeIndex) -> np.ndarray:
        return np.full(len(steps), 100.0)

    now = index[96 * 2 + 64]  # 16:00 local
    steps = pd.date_range(now, periods=96, freq="15min")
    learnt = Persistence(1.0, 0.9, (0.5, 0.6, 0.7, 0.8, 1.0))
    median, scale = intraday(flat, learnt, metered, steps, now, TZ)
    assert median[0] == 120.0  # lead 0: the whole 20 kW
    assert np.isclose(median[4], 100.0 + 20.0 * 0.9)  # an hour later: decayed once
    assert np.all(np.diff(median) <= 1e-9) and median[-1] > 100.0
    assert scale[0] == 0.5 and scale[-1] == 1.0
    unchanged, ones = intraday(flat, NO_PERSISTENCE, metered, steps, now, TZ)
    assert (unchanged == 100.0).all() and (ones == 1.0).all()
    at_midnight = index[96 * 2]
    first, _ = intraday(flat, learnt, metered, steps + (at_midnight - now), at_midnight, TZ)
    assert (first == 100.0).all()  # nothing metered yet today: nothing to correct


def test_bands_from_few_held_out_days_are_widened_and_hold_more_of_a_new_day() -> None:
    assert small_sample_widening(FULL_SAMPLE_DAYS) == 1.0
    assert small_sample_widening(1) == 1.0 + SMALL_SAMPLE_WIDENING * (1 - 1 / FULL_SAMPLE_DAYS)
    assert small_sample_widening(1) > small_sample_widening(3) > 1.0
    index = _days(8)
    rng = np.random.default_rng(7)
    errors = np.repeat(rng.normal(0.0, 5.0, 8), 96) + rng.normal(0.0, 2.0, len(index))
    one_day = error_quantiles(index[:96], errors[:96], np.zeros(96), days=1)
    raw = error_quantiles(index[:96], errors[:96], np.zeros(96), days=FULL_SAMPLE_DAYS)
    assert np.allclose(one_day.high, raw.high * small_sample_widening(1))
    later = slice(96, None)
    low, high = one_day.band(index[later], np.zeros(96 * 7))
    low_raw, high_raw = raw.band(index[later], np.zeros(96 * 7))
    assert coverage(errors[later], low, high) > coverage(errors[later], low_raw, high_raw)


def test_a_corrected_forecast_gets_a_band_centred_on_it() -> None:
    index = _days(1)
    steps = index[64:68]
    lopsided = error_quantiles(index, np.where(np.arange(96) % 2 == 0, -30.0, 2.0), np.zeros(96))
    median = np.full(4, 50.0)
    day_ahead = intraday_band(lopsided, NO_PERSISTENCE, steps, median, np.ones(4))
    assert (day_ahead[0] < 25.0).all() and (day_ahead[1] < 53.0).all()  # most errors below
    learnt = Persistence(1.0, 0.9, (0.5, 1.0, 1.0, 1.0, 1.0))
    low, high = intraday_band(lopsided, learnt, steps, median, np.array([0.5, 0.5, 1.0, 1.0]))
    hours = np.asarray(steps.hour)
    half = (lopsided.high - lopsided.low)[hours] / 2.0
    assert np.allclose(high - median, median - low)
    assert np.allclose(high - median, half * [0.5, 0.5, 1.0, 1.0])
