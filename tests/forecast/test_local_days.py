"""Forecast days are local days: 23 h, 24 h or 25 h long, and in zones whose clocks jump at
midnight (America/Santiago) they start at 01:00."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from energyhub.forecast.backtest import backtest_origins, backtest_series
from energyhub.forecast.features import demand_features
from energyhub.forecast.gbm import PvSite
from energyhub.forecast.intraday import local_midnight
from energyhub.forecast.profile import ForecastOptions, nmae, seasonal_naive
from energyhub.forecast.select import demand_candidates, holdout_origins, pv_candidates
from energyhub.localdays import wall_clock_back

BERLIN = ZoneInfo("Europe/Berlin")
SANTIAGO = ZoneInfo("America/Santiago")
STEP = pd.Timedelta(minutes=15)


def local(text: str, tz: ZoneInfo) -> pd.Timestamp:
    return pd.Timestamp(text, tz=tz).tz_convert("UTC")


def test_held_out_days_start_at_local_midnight_across_the_spring_change() -> None:
    now = local("2026-03-31 10:00", BERLIN)
    origins = holdout_origins(now, BERLIN, 3)
    assert [o.tz_convert(BERLIN).strftime("%d %H:%M") for o in origins] == [
        "28 00:00", "29 00:00", "30 00:00"
    ]  # fmt: skip  (a 24 h step back from 30 March gave 28 March 23:00)


def test_a_day_whose_midnight_the_clocks_skip_starts_at_one() -> None:
    now = local("2026-09-07 10:00", SANTIAGO)  # 6 September 2026 has no 00:00 in Santiago
    origins = holdout_origins(now, SANTIAGO, 2)  # raised ValueError (nonexistent time)
    assert [o.tz_convert(SANTIAGO).isoformat() for o in origins] == [
        "2026-09-05T00:00:00-04:00", "2026-09-06T01:00:00-03:00"
    ]  # fmt: skip
    at = local("2026-09-06 12:00", SANTIAGO)
    assert local_midnight(at, SANTIAGO) == local("2026-09-06 01:00", SANTIAGO)


def _office(index: pd.DatetimeIndex, tz: ZoneInfo) -> pd.Series:
    hours = np.asarray(index.tz_convert(tz).hour)
    return pd.Series(np.where((hours >= 8) & (hours < 18), 900.0, 300.0), index=index)


def test_backtest_days_are_the_local_days_23_24_and_25_hours_long() -> None:
    for tz, first, last, lengths in (
        (BERLIN, "2026-03-01", "2026-03-31", [96, 92, 96]),  # 28, 29, 30 March
        (BERLIN, "2026-10-01", "2026-10-27", [96, 100, 96]),  # 24, 25, 26 October
        (SANTIAGO, "2026-08-15", "2026-09-08", [96, 92, 96]),  # 5, 6, 7 September
    ):
        index = pd.date_range(local(first, tz), local(last, tz), freq=STEP, inclusive="left")
        values = _office(index, tz)
        origins = backtest_origins(values, tz, 3, pd.Timedelta(days=2))
        assert all(o.tz_convert(tz).hour in (0, 1) for o in origins)
        ends = [*origins[1:], local(last, tz)]
        assert [int((e - o) / STEP) for o, e in zip(origins, ends, strict=True)] == lengths
        candidates = demand_candidates("main", tz, None, ForecastOptions())
        yesterday = [c for c in candidates if c.name == "yesterday"]
        result = backtest_series(
            values, tz, yesterday, label="main", days=3, history=pd.Timedelta(days=14)
        )
        assert result.scores["naive 7d"].steps == sum(lengths)  # 288 whatever the days' lengths


def test_the_same_time_yesterday_is_the_same_clock_time() -> None:
    """Across a 23 h and a 25 h day: the clock time, not 24 h back; a time the clocks skipped is
    where they resumed, one they repeated its first occurrence."""
    at = pd.DatetimeIndex([local(t, BERLIN) for t in (
        "2026-03-30 10:00", "2026-03-29 10:00", "2026-03-30 02:30", "2026-10-26 02:30",
        "2026-10-26 10:00",
    )])  # fmt: skip
    back = wall_clock_back(at, BERLIN, 1).tz_convert(BERLIN)
    assert [t.isoformat() for t in back] == [
        "2026-03-29T10:00:00+02:00", "2026-03-28T10:00:00+01:00", "2026-03-29T03:00:00+02:00",
        "2026-10-25T02:30:00+02:00", "2026-10-25T10:00:00+01:00",
    ]  # fmt: skip
    assert [(a - b) / pd.Timedelta(hours=1) for a, b in zip(at, back, strict=True)] == [
        24.0, 23.0, 23.5, 25.0, 24.0
    ]  # fmt: skip
    week = wall_clock_back(at[:1], BERLIN, 7).tz_convert(BERLIN)
    assert week[0].isoformat() == "2026-03-23T10:00:00+01:00"


def test_naive_forecasts_of_a_clock_bound_load_are_exact_on_daylight_saving_days() -> None:
    """An office whose load follows the clock: yesterday's and last week's values at the same
    clock time forecast the 23 h and 25 h days and the days after them without error (24 and 168
    hours back were an hour off at 08:00 and 18:00)."""
    for first, last in (("2026-03-01", "2026-04-01"), ("2026-10-01", "2026-10-28")):
        index = pd.date_range(local(first, BERLIN), local(last, BERLIN), freq=STEP,
                              inclusive="left")  # fmt: skip
        values = _office(index, BERLIN)
        candidates = demand_candidates("main", BERLIN, None, ForecastOptions())
        yesterday = [c for c in candidates if c.name == "yesterday"]
        result = backtest_series(
            values, BERLIN, yesterday, label="main", days=4, history=pd.Timedelta(days=14)
        )
        for name in ("yesterday", "naive 1d", "naive 7d"):
            assert result.scores[name].nmae == 0.0, (first, name, result.scores[name])
        steps = pd.date_range(local(last, BERLIN) - pd.Timedelta(days=3), local(last, BERLIN),
                              freq=STEP, inclusive="left")  # fmt: skip
        for period in (timedelta(days=1), timedelta(days=7)):
            naive = seasonal_naive(values, steps, period, BERLIN)
            assert nmae(values.reindex(steps), naive) == 0.0


def test_the_boosted_models_same_time_features_are_the_same_clock_time() -> None:
    """Yesterday's value (column 5) and the mean of the same weekday's (column 10) of a load that
    follows the clock equal the load itself on the day after the clocks went forward."""
    index = pd.date_range(local("2026-03-01", BERLIN), local("2026-04-01", BERLIN), freq=STEP,
                          inclusive="left")  # fmt: skip
    values = _office(index, BERLIN)
    monday = index[(index >= local("2026-03-30", BERLIN)) & (index < local("2026-03-31", BERLIN))]
    rows = demand_features(values, monday, BERLIN, None)
    expected = values.reindex(monday).to_numpy()
    np.testing.assert_array_equal(rows[:, 5], expected)
    np.testing.assert_array_equal(rows[:, 10], expected)


def test_a_pv_meters_yesterday_is_24_hours_back_as_the_sun() -> None:
    """Output that follows the sun (UTC hours) is forecast from 24 h before, whatever the clock."""
    index = pd.date_range(local("2026-03-20", BERLIN), local("2026-04-01", BERLIN), freq=STEP,
                          inclusive="left")  # fmt: skip
    hours = np.asarray(index.hour + index.minute / 60)  # UTC: the sun's time here
    values = pd.Series(np.clip(100 * np.sin((hours - 5) / 12 * np.pi), 0, None), index=index)
    site = PvSite(150.0, 52.5, 13.4)
    (candidate,) = [c for c in pv_candidates("pv", BERLIN, site, None, ForecastOptions())
                    if c.name == "yesterday"]  # fmt: skip
    sunday = index[(index >= local("2026-03-29", BERLIN)) & (index < local("2026-03-30", BERLIN))]
    known = values[values.index < sunday[0]]  # the 23 h day: after 03:00 its clock times are
    forecast = candidate.fit(known)(known, sunday)  # 23 h after Saturday's, not 24
    np.testing.assert_allclose(forecast, values.reindex(sunday).to_numpy())
