"""The boosted demand model's features: known at the origin, computed as documented."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from energyhub.forecast.features import DAY, WEEK, demand_features
from energyhub.forecast.gbm import fit_boosted

TZ = ZoneInfo("Asia/Shanghai")
START = pd.Timestamp("2025-03-03", tz=TZ).tz_convert("UTC")  # a Monday, local midnight


def series(days: int, step: str = "1h", start: pd.Timestamp = START) -> pd.Series:
    index = pd.date_range(start, periods=days * int(DAY / pd.Timedelta(step)), freq=step)
    rng = np.random.default_rng(3)
    return pd.Series(100.0 + rng.normal(0.0, 10.0, len(index)), index=index)


def test_a_day_s_features_use_nothing_from_that_day_or_later() -> None:
    values = series(40)
    origin = START + pd.Timedelta(days=35)
    day = pd.date_range(origin, origin + DAY, freq="1h", inclusive="left")
    weather = pd.DataFrame({"outdoor_c": np.linspace(5, 25, len(values))}, index=values.index)
    before = demand_features(values, day, TZ, weather)
    changed = values.copy()
    changed[changed.index >= origin] *= 10.0  # the readings the forecast must not see
    after = demand_features(changed, day, TZ, weather)
    np.testing.assert_array_equal(before, after)


def test_the_means_of_same_time_lags_and_the_level_at_the_origin() -> None:
    values = series(40)
    origin = START + pd.Timedelta(days=35)
    step = origin + pd.Timedelta(hours=13)
    row = demand_features(values, pd.DatetimeIndex([step]), TZ, None)[0]
    same_time = [values[step - k * DAY] for k in range(1, 8)]
    same_weekday = [values[step - k * WEEK] for k in range(1, 5)]
    last_day = values[(values.index >= origin - DAY) & (values.index < origin)]
    assert row[5] == same_time[0] and row[6] == same_time[1] and row[7] == same_time[6]
    assert np.isclose(row[8], np.mean(same_time[:3]))
    assert np.isclose(row[9], np.mean(same_time))
    assert np.isclose(row[10], np.mean(same_weekday))
    assert np.isclose(row[11], last_day.mean())
    assert np.isclose(row[13], last_day.iloc[-3:].mean())  # the last 3 h before midnight
    assert np.isnan(row[15]) and np.isnan(row[16])  # no weather: no temperature features


def test_the_temperature_feature_is_the_mean_of_the_step_s_local_day() -> None:
    values = series(10)
    weather = pd.DataFrame({"outdoor_c": np.arange(len(values), dtype=float)}, index=values.index)
    step = START + pd.Timedelta(days=8, hours=5)
    row = demand_features(values, pd.DatetimeIndex([step]), TZ, weather)[0]
    local_day = weather["outdoor_c"][(values.index >= step - pd.Timedelta(hours=5))]
    assert row[15] == weather["outdoor_c"][step]
    assert np.isclose(row[16], local_day.iloc[:24].mean())


def test_a_forecast_across_a_daylight_saving_change_predicts_each_local_day() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = pd.Timestamp("2025-02-20", tz=berlin).tz_convert("UTC")
    values = series(45, "15min", start)
    now = pd.Timestamp("2025-03-29 12:00", tz=berlin).tz_convert("UTC")  # DST starts on the 30th
    known = values[values.index < now]
    model = fit_boosted(known, berlin)
    steps = pd.date_range(now, periods=36 * 4, freq="15min")
    forecast = model.predict(known, steps)
    assert forecast.shape == (len(steps),)
    assert np.isfinite(forecast).all() and (forecast >= 0).all()
    assert 80.0 < float(np.mean(forecast)) < 120.0
