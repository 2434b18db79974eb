"""The rolling-origin backtest on short and gappy histories: scores or notes, never a crash."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from energyhub.forecast.backtest import CHOSEN, NAIVE_DAY, backtest_series
from energyhub.forecast.profile import ForecastOptions
from energyhub.forecast.select import demand_candidates

TZ = ZoneInfo("Asia/Shanghai")


def _series(days: float) -> pd.Series:
    start = pd.Timestamp("2025-03-03", tz=TZ).tz_convert("UTC")
    index = pd.date_range(start, periods=int(days * 24), freq="1h")
    hours = np.asarray(index.tz_convert(TZ).hour)
    return pd.Series(np.where((hours >= 8) & (hours < 18), 500.0, 100.0), index=index)


def test_a_short_history_scores_what_it_can_and_leaves_the_boosted_model_out() -> None:
    series = _series(4)
    series.iloc[30:40] = np.nan  # a gap the store left
    candidates = demand_candidates("b/main", TZ, None, ForecastOptions())
    result = backtest_series(
        series, TZ, candidates, label="b/main", days=7, history=pd.Timedelta(days=28)
    )
    assert result.origins == 2  # 2 d of history before each, a whole day after
    assert result.scores["boosted"].steps == 0 and np.isnan(result.scores["boosted"].nmae)
    assert result.scores[CHOSEN].steps == 48
    assert result.scores[NAIVE_DAY].nmae == 0.0  # every day the same: yesterday is exact
    assert result.band is not None


def test_too_short_for_any_origin_says_so() -> None:
    candidates = demand_candidates("b/main", TZ, None, ForecastOptions())
    result = backtest_series(
        _series(1.5), TZ, candidates, label="b/main", days=7, history=pd.Timedelta(days=28)
    )
    assert result.origins == 0 and result.scores == {}
    assert result.notes == ["b/main: not enough history for a day-ahead backtest (need 3 d)"]


def test_a_new_meter_in_a_long_window_is_too_short_for_any_origin() -> None:
    """The store's grid starts where the backtest's window does (28 + 7 days before its end),
    so a meter connected 1.5 days before the end came as 33 days of NaN then 1.5 of data:
    7 origins counted from the grid's start, every model null and nothing saying why."""
    data = _series(1.5)
    step = pd.Timedelta(hours=1)
    grid = pd.date_range(data.index[0] - 33 * pd.Timedelta(days=1), data.index[-1], freq=step)
    series = data.reindex(grid)
    candidates = demand_candidates("b/main", TZ, None, ForecastOptions())
    result = backtest_series(
        series, TZ, candidates, label="b/main", days=7, history=pd.Timedelta(days=28)
    )
    assert result.origins == 0 and result.scores == {}
    assert result.notes == ["b/main: not enough history for a day-ahead backtest (need 3 d)"]


def test_days_without_a_reading_say_there_was_nothing_to_score() -> None:
    """A PV logger that stopped weeks before the backtest's end (SERF's file ends on 13
    October): the models were chosen and fitted on each of the days, every score was empty,
    and nothing said why the table was all dashes."""
    data = _series(10)
    step = pd.Timedelta(hours=1)
    grid = pd.date_range(data.index[0], data.index[-1] + 5 * pd.Timedelta(days=1), freq=step)
    candidates = demand_candidates("b/pv", TZ, None, ForecastOptions())
    result = backtest_series(
        data.reindex(grid), TZ, candidates, label="b/pv", days=3, history=pd.Timedelta(days=28)
    )
    assert result.origins == 3 and result.scores[CHOSEN].steps == 0
    assert result.notes == [
        "b/pv: no reading in the 3 day(s) backtested: nothing to score (the meter's last "
        f"reading is {data.index[-1].isoformat()})"
    ]
